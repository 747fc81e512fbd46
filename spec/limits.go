package spec

// Limits on what a release may be. They are exported so that every door that
// takes a release (the CLI, the API, chat) refuses the same things.
const (
	// MaxSpecBytes is the largest release spec read: a spec is a page or two,
	// and the decoder's work grows with the document.
	MaxSpecBytes = 256 << 10
	// MaxPlanSteps is the most steps a plan may have; each step is an entry
	// in the workflow history.
	MaxPlanSteps = 100
)
