package worker

import (
	"fmt"
	"os"
	"strconv"
	"time"

	sdkworker "go.temporal.io/sdk/worker"
)

// tuning is how much work a worker takes on at once and how it polls for it.
// The defaults are the SDK's, except the sticky schedule-to-start timeout.
type tuning struct {
	activities      int
	localActivities int
	workflowTasks   int
	activityPollers int
	workflowPollers int
	// sticky is how long a workflow task waits on the sticky queue of the
	// worker that ran the workflow last before any worker may take it. When
	// that worker has died, every signal, update and timer of its workflows
	// waits this long: the SDK's 5s is what an approve right after a worker
	// death took to answer. 1s costs a replay on another worker when a busy
	// worker is slower than that to take the task, which under load spreads
	// the work rather than queue it behind one worker.
	sticky time.Duration
}

func defaultTuning() tuning {
	return tuning{
		activities:      1000,
		localActivities: 1000,
		workflowTasks:   1000,
		activityPollers: 2,
		workflowPollers: 2,
		sticky:          time.Second,
	}
}

// flagSet is the part of a flag set the tuning flags need (pflag's, under cobra).
type flagSet interface {
	IntVar(p *int, name string, value int, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// flags registers the tuning flags, each defaulting to its environment
// variable; the error names a variable that is not a number.
func (t *tuning) flags(fs flagSet) error {
	var bad error
	for _, f := range []struct {
		name, env, usage string
		v                *int
	}{
		{"max-activities", "CUTOVER_MAX_ACTIVITIES", "activities this worker runs at once", &t.activities},
		{"max-local-activities", "CUTOVER_MAX_LOCAL_ACTIVITIES", "local activities this worker runs at once", &t.localActivities},
		{"max-workflow-tasks", "CUTOVER_MAX_WORKFLOW_TASKS", "workflow tasks this worker runs at once", &t.workflowTasks},
		{"activity-pollers", "CUTOVER_ACTIVITY_POLLERS", "concurrent polls for activity tasks", &t.activityPollers},
		{"workflow-pollers", "CUTOVER_WORKFLOW_POLLERS", "concurrent polls for workflow tasks (at least 2: sticky and normal queue)", &t.workflowPollers},
	} {
		if s := os.Getenv(f.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil && bad == nil {
				bad = fmt.Errorf("%s: %q is not a whole number", f.env, s)
			}
			if err == nil {
				*f.v = n
			}
		}
		fs.IntVar(f.v, f.name, *f.v, f.usage+" ("+f.env+")")
	}
	const stickyEnv = "CUTOVER_STICKY_SCHEDULE_TO_START_TIMEOUT"
	if s := os.Getenv(stickyEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil && bad == nil {
			bad = fmt.Errorf("%s: %q is not a duration like 1s or 500ms", stickyEnv, s)
		}
		if err == nil {
			t.sticky = d
		}
	}
	fs.DurationVar(&t.sticky, "sticky-schedule-to-start-timeout", t.sticky,
		"how long a workflow task waits for the worker that has the workflow cached before any worker takes it ("+stickyEnv+")")
	return bad
}

// check refuses values the SDK would misread: it takes 0 for "its default".
func (t tuning) check() error {
	for _, f := range []struct {
		flag   string
		v, min int
	}{
		{"--max-activities", t.activities, 1},
		{"--max-local-activities", t.localActivities, 1},
		{"--max-workflow-tasks", t.workflowTasks, 2},
		{"--activity-pollers", t.activityPollers, 1},
		{"--workflow-pollers", t.workflowPollers, 2},
	} {
		if f.v < f.min {
			return fmt.Errorf("%s must be at least %d, got %d", f.flag, f.min, f.v)
		}
	}
	if t.sticky <= 0 {
		return fmt.Errorf("--sticky-schedule-to-start-timeout must be above 0, got %s", t.sticky)
	}
	return nil
}

// options are the SDK's worker options with this tuning.
func (t tuning) options() sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentActivityExecutionSize:      t.activities,
		MaxConcurrentLocalActivityExecutionSize: t.localActivities,
		MaxConcurrentWorkflowTaskExecutionSize:  t.workflowTasks,
		MaxConcurrentActivityTaskPollers:        t.activityPollers,
		MaxConcurrentWorkflowTaskPollers:        t.workflowPollers,
		StickyScheduleToStartTimeout:            t.sticky,
		// On SIGTERM running activities get this long to finish; what does
		// not is retried by another worker.
		WorkerStopTimeout: 30 * time.Second,
	}
}
