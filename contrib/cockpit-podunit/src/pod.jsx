// PodPage: one pod — its unit and actions, containers, conditions and
// rollout, CPU and memory over time from its slice, journal and manifest.
import { useEffect, useState } from "react";
import {
    Alert, Breadcrumb, BreadcrumbItem, Button, Card, CardBody, CardTitle, DescriptionList,
    DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Flex, Page, PageSection, Title,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import cockpit from "./cockpit.js";
import { getPod, sliceUsage, unitAction, unitState } from "./api.js";
import { bytes, condition, ConditionUpToDate, containerRows, cpuPercent, podRow } from "./status.js";
import { usePoll } from "./poll.js";
import { StatusLabel } from "./overview.jsx";
import { Chart } from "./chart.jsx";
import { Journal } from "./journal.jsx";
import { Manifest } from "./manifest.jsx";
import { Events } from "./events.jsx";

// How many samples of the slice's accounting the charts keep (2 s apart).
const samplesKept = 150;

function Term({ term, id, children }) {
    return (
        <DescriptionListGroup>
            <DescriptionListTerm>{term}</DescriptionListTerm>
            <DescriptionListDescription id={id}>{children}</DescriptionListDescription>
        </DescriptionListGroup>
    );
}

function UnitCard({ unit, admin }) {
    const state = usePoll(() => unitState(unit), [unit]);
    const [busy, setBusy] = useState(null);
    const [error, setError] = useState(null);
    const act = action => {
        setBusy(action);
        setError(null);
        unitAction(action, unit).catch(e => setError(`systemctl ${action} ${unit}: ${e.message}`)).finally(() => setBusy(null));
    };
    const s = state.data;
    return (
        <Card id="unit">
            <CardTitle>Unit {unit}</CardTitle>
            <CardBody>
                {error && <Alert id="action-error" variant="danger" isInline title="Failed">{error}</Alert>}
                {state.error && <Alert variant="warning" isInline title="systemd does not answer">{state.error.message}</Alert>}
                {s && (
                    <DescriptionList isHorizontal>
                        <Term term="State" id="unit-state">{s.activeState} ({s.subState})</Term>
                        <Term term="Since" id="unit-since" >{s.activeEnter ? new Date(s.activeEnter / 1000).toISOString() : "-"}</Term>
                        <Term term="Status">{s.statusText || "-"}</Term>
                        <Term term="Main PID">{s.mainPID || "-"}</Term>
                        <Term term="Unit restarts">{s.restarts}</Term>
                        <Term term="Slice">{s.slice}</Term>
                    </DescriptionList>
                )}
                <Flex style={{ marginTop: "1em" }}>
                    {["restart", "stop", "start"].map(a => (
                        <Button key={a} id={"unit-" + a} variant="secondary" isDisabled={!admin || busy !== null}
                                isLoading={busy === a} onClick={() => act(a)}>
                            {a[0].toUpperCase() + a.slice(1)}
                        </Button>
                    ))}
                    {!admin && <span id="read-only">Read-only: administrative access is needed to act on pods.</span>}
                </Flex>
            </CardBody>
        </Card>
    );
}

function Usage({ slice }) {
    const [samples, setSamples] = useState([]);
    const [error, setError] = useState(null);
    useEffect(() => {
        let stopped = false;
        let timer = null;
        setSamples([]);
        const tick = async () => {
            try {
                const s = await sliceUsage(slice);
                if (!stopped) setSamples(list => list.concat([s]).slice(-samplesKept));
            } catch (e) {
                if (!stopped) setError(e);
            }
            if (!stopped) timer = setTimeout(tick, 2000);
        };
        tick();
        return () => { stopped = true; clearTimeout(timer) };
    }, [slice]);
    const cpu = cpuPercent(samples);
    // systemd counts memory but no CPU time (UINT64_MAX): this test bed's
    // cgroup v1 hybrid, for one.
    const noCPU = samples.length > 1 && samples.every(s => s.cpuNSec === null && s.memory !== null);
    return (
        <Card id="usage">
            <CardTitle>Resources of {slice}</CardTitle>
            <CardBody>
                {error && <Alert variant="warning" isInline title="systemd's accounting cannot be read">{error.message}</Alert>}
                <Flex>
                    <Chart id="chart-memory" title="Memory" samples={samples.map(s => ({ at: s.at, value: s.memory }))} format={bytes} />
                    <Chart id="chart-cpu" title="CPU" samples={cpu} format={v => v.toFixed(1) + " %"}
                           empty={noCPU ? "not counted: systemd reports no CPU time (CPUUsageNSec) for this slice" : undefined} />
                    <Chart id="chart-tasks" title="Tasks" samples={samples.map(s => ({ at: s.at, value: s.tasks }))} format={String} />
                </Flex>
            </CardBody>
        </Card>
    );
}

function Containers({ pod }) {
    return (
        <Table aria-label="Containers" variant="compact" id="containers">
            <Thead><Tr><Th>Name</Th><Th>Image</Th><Th>Ready</Th><Th>State</Th><Th>Restarts</Th><Th>Last termination</Th></Tr></Thead>
            <Tbody>
                {containerRows(pod).map(c => (
                    <Tr key={c.name} data-container={c.name}>
                        <Td dataLabel="Name">{c.name}</Td>
                        <Td dataLabel="Image">{c.image}<br /><small>{c.imageID}</small></Td>
                        <Td dataLabel="Ready">{c.ready ? "yes" : "no"}</Td>
                        <Td dataLabel="State">{c.state}</Td>
                        <Td dataLabel="Restarts">{c.restarts}</Td>
                        <Td dataLabel="Last termination">{c.lastTermination}</Td>
                    </Tr>
                ))}
            </Tbody>
        </Table>
    );
}

function Conditions({ pod }) {
    return (
        <Table aria-label="Conditions" variant="compact" id="conditions">
            <Thead><Tr><Th>Type</Th><Th>Status</Th><Th>Reason</Th><Th>Message</Th></Tr></Thead>
            <Tbody>
                {((pod.status && pod.status.conditions) || []).map(c => (
                    <Tr key={c.type} data-condition={c.type}>
                        <Td>{c.type}</Td><Td>{c.status}</Td><Td>{c.reason || ""}</Td><Td>{c.message || ""}</Td>
                    </Tr>
                ))}
            </Tbody>
        </Table>
    );
}

export function PodPage({ namespace, name, admin }) {
    const pod = usePoll(() => getPod(namespace, name), [namespace, name]);
    const p = pod.data;
    const row = p && podRow(p, Date.now());
    const upToDate = p && condition(p, ConditionUpToDate);
    return (
        <Page>
            <PageSection>
                <Breadcrumb>
                    <BreadcrumbItem to="#" onClick={e => { e.preventDefault(); cockpit.location.go([]) }}>Pods</BreadcrumbItem>
                    <BreadcrumbItem isActive>{namespace}/{name}</BreadcrumbItem>
                </Breadcrumb>
                <Title headingLevel="h1" id="pod-title">
                    {name} {row && <StatusLabel word={row.status} severity={row.severity} />}
                </Title>
                {pod.error && <Alert variant="danger" isInline title="The status API does not answer for this pod">{pod.error.message}</Alert>}
            </PageSection>
            {p && (
                <>
                    <PageSection>
                        <Card>
                            <CardBody>
                                <DescriptionList isHorizontal columnModifier={{ default: "2Col" }}>
                                    <Term term="Namespace">{namespace}</Term>
                                    <Term term="Pod IP">{row.ip}</Term>
                                    <Term term="Ready">{row.ready}</Term>
                                    <Term term="Restarts">{row.restarts}</Term>
                                    <Term term="Age">{row.age}</Term>
                                    <Term term="Source">{row.source}</Term>
                                    <Term term="Rollout" id="rollout">
                                        {upToDate ? `${upToDate.status === "True" ? "up to date" : upToDate.reason}${upToDate.message ? ": " + upToDate.message : ""}` : "-"}
                                    </Term>
                                </DescriptionList>
                            </CardBody>
                        </Card>
                    </PageSection>
                    {row.unit && <PageSection><UnitCard unit={row.unit} admin={admin} /></PageSection>}
                    <PageSection>
                        <Card><CardTitle>Containers</CardTitle><CardBody><Containers pod={p} /></CardBody></Card>
                    </PageSection>
                    <PageSection>
                        <Card><CardTitle>Conditions</CardTitle><CardBody><Conditions pod={p} /></CardBody></Card>
                    </PageSection>
                    {row.unit && (
                        <PageSection>
                            <Card><CardTitle>Events</CardTitle><CardBody><Events unit={row.unit} /></CardBody></Card>
                        </PageSection>
                    )}
                    {row.unit && <PageSection><UsageForUnit unit={row.unit} /></PageSection>}
                    {row.unit && (
                        <PageSection>
                            <Card><CardTitle>Journal</CardTitle><CardBody>
                                <Journal unit={row.unit} containers={(p.spec.containers || []).map(c => c.name)} />
                            </CardBody></Card>
                        </PageSection>
                    )}
                    {row.source && (
                        <PageSection>
                            <Card><CardTitle>Manifest {row.source}</CardTitle><CardBody>
                                <Manifest path={row.source} admin={admin} />
                            </CardBody></Card>
                        </PageSection>
                    )}
                </>
            )}
        </Page>
    );
}

// UsageForUnit finds the unit's slice (systemd's Slice= of the service),
// then charts it.
function UsageForUnit({ unit }) {
    const [slice, setSlice] = useState(null);
    useEffect(() => { unitState(unit).then(s => setSlice(s.slice), () => setSlice(null)) }, [unit]);
    return slice ? <Usage slice={slice} /> : null;
}
