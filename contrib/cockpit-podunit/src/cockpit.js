// Cockpit's API, loaded by index.html from ../base1/cockpit.js (the bridge's
// own copy, so the page always speaks the protocol of the Cockpit it runs in).
const cockpit = window.cockpit;
export default cockpit;
