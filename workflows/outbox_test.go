package workflows

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
)

// A release started through the API or the CLI, which set every search
// attribute at the start, upserts them only where it starts to wait or the
// traffic moves, each change once, and several changes of one workflow task
// together: one visibility write each, not one per step.
func TestSearchAttributesChangeWhereTheReleaseWaits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rel := testRelease()
	if err := h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		AttrApp.ValueSet(rel.App), AttrVersion.ValueSet(rel.Version), AttrStage.ValueSet(StageStarting),
		AttrTraffic.ValueSet(0), AttrOutcome.ValueSet(OutcomeRunning))); err != nil {
		t.Fatal(err)
	}
	var upserts []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		var parts []string
		if v, ok := sa.GetKeyword(AttrStage); ok {
			parts = append(parts, "stage="+v)
		}
		if v, ok := sa.GetInt64(AttrTraffic); ok {
			parts = append(parts, fmt.Sprintf("traffic=%d", v))
		}
		if v, ok := sa.GetKeyword(AttrOutcome); ok {
			parts = append(parts, "outcome="+v)
		}
		if _, ok := sa.GetKeyword(AttrApp); ok {
			parts = append(parts, "app")
		}
		upserts = append(upserts, strings.Join(parts, " "))
	}).Return(nil)
	h.approveAtGate()
	if st := h.run(rel); st.Outcome != OutcomePromoted {
		t.Fatalf("outcome %s (%s)", st.Outcome, st.Reason)
	}
	want := []string{
		"stage=provision",
		"stage=soak traffic=10",
		"stage=analysis traffic=50",
		"stage=approval",
		"stage=standby traffic=100",
		"stage=done outcome=promoted",
	}
	if strings.Join(upserts, " | ") != strings.Join(want, " | ") {
		t.Errorf("upserts:\n  %s\nwant:\n  %s", strings.Join(upserts, "\n  "), strings.Join(want, "\n  "))
	}
}
