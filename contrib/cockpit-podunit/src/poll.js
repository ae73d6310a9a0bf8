// usePoll calls load now and every interval ms while the view is shown,
// keeping its last answer and error: the page's live updates (the status
// API has no watch, so views poll it; 1.5 s is how stale a row may be).
import { useEffect, useState } from "react";

export const PollInterval = 1500;

export function usePoll(load, deps, interval = PollInterval) {
    const [state, setState] = useState({ data: null, error: null });
    useEffect(() => {
        let stopped = false;
        let timer = null;
        const tick = async () => {
            try {
                const data = await load();
                if (!stopped) setState({ data, error: null });
            } catch (error) {
                if (!stopped) setState(s => ({ data: s.data, error }));
            }
            if (!stopped) timer = setTimeout(tick, interval);
        };
        tick();
        return () => { stopped = true; clearTimeout(timer) };
    }, deps); // eslint-disable-line react-hooks/exhaustive-deps
    return state;
}
