// Journal: the pod's journal (its unit's, or one container's), following.
import { useEffect, useState } from "react";
import { Alert, FormSelect, FormSelectOption } from "@patternfly/react-core";
import { followJournal } from "./api.js";

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
            <FormSelect id="journal-container" value={container} aria-label="Container"
                        onChange={(_e, v) => setContainer(v)} style={{ maxWidth: "20em" }}>
                <FormSelectOption value="" label="All of the pod" />
                {containers.map(c => <FormSelectOption key={c} value={c} label={c} />)}
            </FormSelect>
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
