// The page's entry point: PatternFly's styles and the App into #app.
import "@patternfly/patternfly/patternfly-base.css";
import "@patternfly/react-core/dist/styles/base.css";
import { createRoot } from "react-dom/client";
import { App } from "./app.jsx";

createRoot(document.getElementById("app")).render(<App />);
