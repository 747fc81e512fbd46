package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

// reader reads the steps a source has gained since the last read, whichever
// way the source reads. Its state is JSON, so a guard resumed on another
// worker goes on from the last counters it saw: for a scrape that means the
// traffic of the time no worker was watching is still counted, in the first
// step after it.
type reader struct {
	src Source
	// C holds the counters' last values (snapshot sources).
	C counters `json:"c"`
	// Since is the end of the last step read, or the time of the last
	// snapshot; before the first read, the start of the window.
	Since time.Time `json:"since"`
	// Primed is set once a first snapshot gave the counters' baseline.
	Primed bool `json:"primed,omitempty"`
}

// errNoReader is a source that implements none of the ways of reading.
var errNoReader = errors.New("the analysis provider implements no way of reading metrics")

// read returns the new steps up to now, oldest first.
func (rd *reader) read(ctx context.Context, r providers.Ref, now time.Time) ([]judge.Step, error) {
	switch s := rd.src.(type) {
	case Snapshotter:
		snap, err := s.Snapshot(ctx, r)
		if err != nil {
			return nil, err
		}
		if !rd.Primed {
			rd.C.baseline(snap)
			rd.Primed, rd.Since = true, snap.At
			return nil, nil
		}
		rd.Since = snap.At
		return []judge.Step{rd.C.step(snap)}, nil
	case Ranger:
		if !now.After(rd.Since) {
			return nil, nil
		}
		snaps, err := s.Range(ctx, r, rd.Since, now, rd.src.Step())
		if err != nil {
			return nil, err
		}
		var steps []judge.Step
		for _, snap := range snaps {
			switch {
			case !rd.Primed:
				rd.C.baseline(snap)
				rd.Primed = true
			case snap.At.After(rd.Since):
				steps = append(steps, rd.C.step(snap))
			default:
				continue
			}
			rd.Since = snap.At
		}
		return steps, nil
	case Stepper:
		if !now.After(rd.Since) {
			return nil, nil
		}
		got, err := s.Steps(ctx, r, rd.Since, now, rd.src.Step())
		if err != nil {
			return nil, err
		}
		var steps []judge.Step
		for _, st := range got {
			if st.End.After(rd.Since) {
				steps = append(steps, st)
				rd.Since = st.End
			}
		}
		return steps, nil
	}
	return nil, providers.BadConfig("%s: %w", rd.src.Type(), errNoReader)
}

// permanent reports whether a source's error is one no retry helps.
func permanent(err error) bool { return providers.Permanent(err) }

// Lagger is a source whose newest data arrive late (CloudWatch publishes a
// period a minute or more after it ends): a comparison reads on for that long
// after its window, so that its last steps are judged too.
type Lagger interface {
	Lag() time.Duration
}

func lagOf(src Source) time.Duration {
	if l, ok := src.(Lagger); ok {
		return l.Lag()
	}
	return 0
}

// sourceError words a read failure for a verdict.
func sourceError(src Source, reason string) string {
	return fmt.Sprintf("%s could not be read: %s", src.Where(), reason)
}
