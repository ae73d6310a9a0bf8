// Journal: the pod's journal (its unit's, or one container's), following,
// with a way to the same lines in Cockpit's own Logs page (search, older
// boots, priorities).
import { useEffect, useState } from "react";
import { Alert, Button, Flex, FormSelect, FormSelectOption } from "@patternfly/react-core";
import cockpit from "./cockpit.js";
import { followJournal } from "./api.js";
import { logsLocation } from "./status.js";

const keep = 300;

export function Journal({ unit, containers }) {
    const [container, setContainer] = useState("");
    const [entries, setEntries] = useState([]);
    const [error, setError] = useState(null);
    useEffect(() => {
        setEntries([]);
        setError(null);
        return followJournal(unit, container,
                             e => setEntries(list => list.concat([e]).slice(-keep)), setError);
    }, [unit, container]);
    return (
        <div id="journal">
            <Flex alignItems={{ default: "alignItemsCenter" }}>
                <FormSelect id="journal-container" value={container} aria-label="Container"
                            onChange={(_e, v) => setContainer(v)} style={{ maxWidth: "20em" }}>
                    <FormSelectOption value="" label="All of the pod" />
                    {containers.map(c => <FormSelectOption key={c} value={c} label={c} />)}
                </FormSelect>
                <Button id="journal-open-logs" variant="link" isInline
                        onClick={() => cockpit.jump(logsLocation(unit, container))}>
                    Open in Logs
                </Button>
            </Flex>
            {error && <Alert variant="warning" isInline title="The journal cannot be read">{error.message}</Alert>}
            <pre className="journal-lines" style={{ maxHeight: "24em", overflow: "auto" }}>
                {entries.map((e, i) => (
                    <div key={i} className="journal-line">
                        {new Date(e.at).toLocaleTimeString()} {e.container ? `[${e.container}] ` : ""}{e.message}
                    </div>
                ))}
            </pre>
        </div>
    );
}
