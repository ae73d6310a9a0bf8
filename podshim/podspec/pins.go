package podspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/podunit/podunit/podshim/atomicfile"
)

// Pins hold a pod generation to the exact images it ran when it was last
// ready: after a rollback the tag of an image may point elsewhere (an
// auto-update pulled a new digest), and the generation rolled back to must
// run what it ran, not what the tag names now. A pod unit whose podshim is
// given a pins file (Args.Pins) creates its containers from the pinned
// image IDs, without pulling, while the pins' generation is its own.
type Pins struct {
	// Generation is the config hash the pins are for; a podshim of
	// another generation ignores them.
	Generation string `json:"generation"`
	// Images maps an image reference as the spec names it
	// ("registry:5000/app:1") to the image ID it ran ("sha256:…").
	Images map[string]string `json:"images"`
}

// ReadPins reads a pins file.
func ReadPins(path string) (*Pins, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Pins
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// WritePins writes a pins file atomically (it survives a power cut whole or
// not at all); a file that holds them already is left as it is, so that a
// sync that keeps a rolled-back pod on its pins writes nothing.
func WritePins(path string, p *Pins) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return atomicfile.WriteSync(path, b, 0o644)
}
