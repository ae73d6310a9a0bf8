// messagesByLine puts validate's errors and notices beside their lines.
import { test } from "node:test";
import assert from "node:assert/strict";
import { messagesByLine } from "../src/validate.js";

test("messagesByLine", () => {
    const out = `/m/x.yaml:9: spec.containers[0].imag: unknown field (did you mean "image"?)
/m/x.yaml:6: notice: spec.priorityClassName: "foo": no PriorityClass objects
/m/x.yaml:9: another
/m/other.yaml:3: not this file's
/m/x.yaml: pod default/x is valid (config 5a5a)
podunit: 1 of 1 file(s) invalid
`;
    assert.deepEqual([...messagesByLine(out, "/m/x.yaml")].sort((a, b) => a[0] - b[0]), [
        [6, ['notice: spec.priorityClassName: "foo": no PriorityClass objects']],
        [9, ['spec.containers[0].imag: unknown field (did you mean "image"?)', "another"]],
    ]);
    assert.equal(messagesByLine("", "/m/x.yaml").size, 0);
});
