// Overview: the node's summary, every pod as `podunit get pods -A -o wide`
// lists it (live: polled), filterable, and the Services podunit has with
// their endpoints.
import { useState } from "react";
import {
    Alert, Card, CardBody, CardTitle, DescriptionList, DescriptionListDescription, DescriptionListGroup,
    DescriptionListTerm, Label, Page, PageSection, SearchInput, Title, Toolbar, ToolbarContent, ToolbarItem,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import cockpit from "./cockpit.js";
import { getEndpointSlices, getHealth, getPods, getServices } from "./api.js";
import { parseHealth, podRows, serviceRows, summary } from "./status.js";
import { usePoll } from "./poll.js";

const colors = { ok: "green", warning: "orange", danger: "red" };

export function StatusLabel({ word, severity }) {
    return <Label color={colors[severity]} className="podunit-status">{word}</Label>;
}

function NodeSummary({ pods, health }) {
    const s = summary(pods || []);
    const checks = parseHealth(health || "");
    return (
        <Card id="node-summary">
            <CardTitle>This node</CardTitle>
            <CardBody>
                <DescriptionList isHorizontal columnModifier={{ default: "3Col" }}>
                    <DescriptionListGroup>
                        <DescriptionListTerm>Pods</DescriptionListTerm>
                        <DescriptionListDescription id="pods-total">{s.total}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                        <DescriptionListTerm>Running</DescriptionListTerm>
                        <DescriptionListDescription id="pods-running">{s.running}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                        <DescriptionListTerm>Failing</DescriptionListTerm>
                        <DescriptionListDescription id="pods-failing">{s.failing}</DescriptionListDescription>
                    </DescriptionListGroup>
                    {checks.map(c => (
                        <DescriptionListGroup key={c.name}>
                            <DescriptionListTerm>{c.name}</DescriptionListTerm>
                            <DescriptionListDescription className="health-check" data-check={c.name}>
                                <Label color={c.ok ? "green" : "red"}>{c.text}</Label>
                            </DescriptionListDescription>
                        </DescriptionListGroup>
                    ))}
                </DescriptionList>
            </CardBody>
        </Card>
    );
}

function PodTable({ rows }) {
    const cols = ["Namespace", "Name", "Ready", "Status", "Restarts", "Age", "Pod IP", "Source"];
    return (
        <Table aria-label="Pods" variant="compact" id="pods">
            <Thead><Tr>{cols.map(c => <Th key={c}>{c}</Th>)}</Tr></Thead>
            <Tbody>
                {rows.map(r => (
                    <Tr key={r.key} data-pod={r.key}>
                        <Td dataLabel="Namespace">{r.namespace}</Td>
                        <Td dataLabel="Name">
                            <a href="#" onClick={e => { e.preventDefault(); cockpit.location.go([r.namespace, r.name]) }}>{r.name}</a>
                        </Td>
                        <Td dataLabel="Ready">{r.ready}</Td>
                        <Td dataLabel="Status"><StatusLabel word={r.status} severity={r.severity} /></Td>
                        <Td dataLabel="Restarts">{r.restarts}</Td>
                        <Td dataLabel="Age">{r.age}</Td>
                        <Td dataLabel="Pod IP">{r.ip}</Td>
                        <Td dataLabel="Source">{r.source}</Td>
                    </Tr>
                ))}
            </Tbody>
        </Table>
    );
}

function Services({ rows }) {
    if (rows.length === 0) return null;
    return (
        <Card id="services">
            <CardTitle>Services</CardTitle>
            <CardBody>
                <Table aria-label="Services" variant="compact">
                    <Thead><Tr><Th>Namespace</Th><Th>Name</Th><Th>Type</Th><Th>Cluster IP</Th><Th>Ports</Th><Th>Endpoints</Th></Tr></Thead>
                    <Tbody>
                        {rows.map(r => (
                            <Tr key={r.key} data-service={r.key}>
                                <Td dataLabel="Namespace">{r.namespace}</Td>
                                <Td dataLabel="Name">{r.name}</Td>
                                <Td dataLabel="Type">{r.type}</Td>
                                <Td dataLabel="Cluster IP">{r.clusterIP}</Td>
                                <Td dataLabel="Ports">{r.ports}</Td>
                                <Td dataLabel="Endpoints">
                                    {r.endpoints.join(", ") || "<none>"}
                                    {r.notReady > 0 && ` (${r.notReady} not ready)`}
                                </Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>
            </CardBody>
        </Card>
    );
}

export function Overview() {
    const [filter, setFilter] = useState("");
    const pods = usePoll(getPods, []);
    const health = usePoll(getHealth, []);
    const services = usePoll(() => Promise.all([getServices(), getEndpointSlices()]), []);
    const rows = podRows(pods.data || [], Date.now(), filter);
    return (
        <Page>
            <PageSection>
                <Title headingLevel="h1">Pods</Title>
            </PageSection>
            <PageSection>
                {pods.error && <Alert variant="danger" isInline title="The status API does not answer" id="status-error">
                    {pods.error.message} (is podunit-status.socket running? systemctl enable --now podunit-status.socket)
                </Alert>}
                <NodeSummary pods={pods.data} health={health.data} />
            </PageSection>
            <PageSection>
                <Card>
                    <CardBody>
                        <Toolbar>
                            <ToolbarContent>
                                <ToolbarItem>
                                    <SearchInput aria-label="Filter pods" placeholder="Filter by name, status, IP or file"
                                                 value={filter} onChange={(_e, v) => setFilter(v)} onClear={() => setFilter("")} />
                                </ToolbarItem>
                            </ToolbarContent>
                        </Toolbar>
                        {pods.data && rows.length === 0 ? <p id="no-pods">No pods found.</p> : <PodTable rows={rows} />}
                    </CardBody>
                </Card>
            </PageSection>
            <PageSection><Services rows={services.data ? serviceRows(...services.data) : []} /></PageSection>
        </Page>
    );
}
