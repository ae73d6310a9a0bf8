// Events: the pod's last events (podunit describe's), following its journal.
import { useEffect, useState } from "react";
import { Alert } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { followJournal } from "./api.js";
import { toEvent } from "./events.js";

const keep = 20;

export function Events({ unit }) {
    const [events, setEvents] = useState([]);
    const [error, setError] = useState(null);
    useEffect(() => {
        setEvents([]);
        setError(null);
        return followJournal(unit, "", entry => {
            const ev = toEvent(entry);
            if (ev) setEvents(list => list.concat([ev]).slice(-keep));
        }, setError);
    }, [unit]);
    return (
        <>
            {error && <Alert variant="warning" isInline title="The journal cannot be read">{error.message}</Alert>}
            <Table aria-label="Events" variant="compact" id="events">
                <Thead><Tr><Th width={15}>Time</Th><Th width={10}>From</Th><Th>Event</Th></Tr></Thead>
                <Tbody>
                    {events.slice().reverse().map((e, i) => (
                        <Tr key={i} className="event">
                            <Td>{new Date(e.at).toLocaleString()}</Td><Td>{e.source}</Td><Td>{e.message}</Td>
                        </Tr>
                    ))}
                </Tbody>
            </Table>
        </>
    );
}
