// App routes on Cockpit's location: / is the overview, /NAMESPACE/NAME a pod.
import { useEffect, useState } from "react";
import cockpit from "./cockpit.js";
import { watchAdmin } from "./api.js";
import { Overview } from "./overview.jsx";
import { PodPage } from "./pod.jsx";

export function App() {
    const [path, setPath] = useState(cockpit.location.path);
    const [admin, setAdmin] = useState(false);
    useEffect(() => {
        const changed = () => setPath(cockpit.location.path);
        cockpit.addEventListener("locationchanged", changed);
        return () => cockpit.removeEventListener("locationchanged", changed);
    }, []);
    useEffect(() => watchAdmin(setAdmin), []);
    if (path.length === 2)
        return <PodPage namespace={path[0]} name={path[1]} admin={admin} />;
    return <Overview />;
}
