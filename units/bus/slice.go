package bus

import (
	"context"
	"fmt"
	"github.com/podunit/podunit/units"
)

// applySlice sets the pod's limits on its slice before the pod starts:
// a new transient slice, or new values on the one still there.
func applySlice(ctx context.Context, m Manager, u *units.Unit) error {
	props := SliceProperties(u)
	_, err := m.StartTransientUnitContext(ctx, u.Slice, "fail", props, nil)
	if err == nil {
		return nil
	}
	if !isDBusError(err, "org.freedesktop.systemd1.UnitExists") {
		return fmt.Errorf("slice %q: %w", u.Slice, err)
	}
	// Description cannot change on a loaded unit; the limits can.
	if err := m.SetUnitPropertiesContext(ctx, u.Slice, true, props[1:]...); err != nil {
		return fmt.Errorf("slice %q: set limits: %w", u.Slice, err)
	}
	return nil
}
