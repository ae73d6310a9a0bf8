// Manifest: the pod's file, read-only, with `podunit validate`'s errors and
// notices beside the lines they name, and its removal (confirmed first).
import { useEffect, useState } from "react";
import { Alert, Button, Modal } from "@patternfly/react-core";
import { readManifest, removeManifest, validate } from "./api.js";
import { messagesByLine } from "./validate.js";

export function Manifest({ path, admin }) {
    const [text, setText] = useState(null);
    const [result, setResult] = useState(null);
    const [error, setError] = useState(null);
    const [confirm, setConfirm] = useState(false);
    const [removed, setRemoved] = useState(false);
    useEffect(() => {
        readManifest(path).then(setText, setError);
        validate(path).then(setResult, setError);
    }, [path]);
    const byLine = messagesByLine(result ? result.output : "", path);
    const remove = () => {
        setConfirm(false);
        removeManifest(path).then(() => setRemoved(true), setError);
    };
    return (
        <div id="manifest">
            {error && <Alert variant="danger" isInline title="Failed">{error.message}</Alert>}
            {removed && <Alert variant="info" isInline title={`${path} removed`}>podunit stops the pod.</Alert>}
            {result && <Alert id="validate-result" variant={result.ok ? "success" : "danger"} isInline
                              title={result.ok ? "podunit validate: valid" : "podunit validate: invalid"}>
                <pre>{result.output}</pre>
            </Alert>}
            {text !== null && (
                <pre className="manifest-text">
                    {text.split("\n").map((l, i) => (
                        <div key={i} className="manifest-line" data-line={i + 1}>
                            <span style={{ opacity: 0.5 }}>{String(i + 1).padStart(4)}  </span>{l}
                            {(byLine.get(i + 1) || []).map((m, j) => (
                                <span key={j} className="validate-message" style={{ color: "var(--pf-v5-global--danger-color--100)" }}>   ← {m}</span>
                            ))}
                        </div>
                    ))}
                </pre>
            )}
            <Button id="remove-manifest" variant="danger" isDisabled={!admin || removed} onClick={() => setConfirm(true)}>
                Remove manifest
            </Button>
            <Modal variant="small" title="Remove the manifest?" isOpen={confirm} onClose={() => setConfirm(false)}
                   actions={[
                       <Button key="remove" id="confirm-remove" variant="danger" onClick={remove}>Remove</Button>,
                       <Button key="cancel" variant="link" onClick={() => setConfirm(false)}>Cancel</Button>,
                   ]}>
                {path} will be deleted and its pod stopped.
            </Modal>
        </div>
    );
}
