package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// State returns the router's current state, as GET /v1/state reports it.
func (r *Router) State() State {
	t := r.table.Load()
	now := time.Now()
	s := State{
		App:         r.cfg.App,
		Weights:     Weights{Blue: t.weight(blue), Green: t.weight(green)},
		Maintenance: t.maintenance,
		Sticky:      r.cfg.Sticky,
		InFlight:    map[string]int64{Blue: r.inFlight[blue].Load(), Green: r.inFlight[green].Load()},
		Pools:       make(map[string][]Instance, 2),
	}
	for c, p := range t.pools {
		list := make([]Instance, 0, len(p))
		for _, in := range p {
			list = append(list, Instance{URL: in.key, Healthy: in.healthy.Load(), InFlight: in.inFlight.Load(), Ejected: in.ejected(now)})
		}
		s.Pools[colorNames[c]] = list
	}
	return s
}

// savedState is the state file: what an operator set, not what the router
// observed, so a restarted router serves the same split once its instances pass
// their first check.
type savedState struct {
	Weights     Weights             `json:"weights"`
	Maintenance bool                `json:"maintenance"`
	Pools       map[string][]string `json:"pools"`
}

// loadState reads the state file; a missing file is an empty router.
func loadState(path string) (*table, error) {
	t := &table{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	w := s.Weights
	if w.Green < 0 || w.Green > 100 || w.Blue+w.Green != 100 {
		return nil, fmt.Errorf("state file %s: weights blue %d and green %d do not make 100", path, w.Blue, w.Green)
	}
	t.green, t.maintenance = w.Green, s.Maintenance
	byURL := make(map[string]*instance)
	for name, urls := range s.Pools {
		c, ok := parseColor(name)
		if !ok {
			return nil, fmt.Errorf("state file %s: unknown pool %q", path, name)
		}
		us, err := parseInstanceURLs(urls)
		if err != nil {
			return nil, fmt.Errorf("state file %s: %s pool: %w", path, name, err)
		}
		for _, u := range us {
			in := byURL[u.String()]
			if in == nil {
				in = newInstance(u)
				byURL[in.key] = in
			}
			t.pools[c] = append(t.pools[c], in)
		}
	}
	return t, nil
}

// saveState writes the state file atomically (a temporary file renamed over
// it), so a crash never leaves half a file for the next start to refuse.
func saveState(path string, t *table) error {
	s := savedState{
		Weights:     Weights{Blue: t.weight(blue), Green: t.weight(green)},
		Maintenance: t.maintenance,
		Pools:       make(map[string][]string, 2),
	}
	for c, p := range t.pools {
		urls := make([]string, 0, len(p))
		for _, in := range p {
			urls = append(urls, in.key)
		}
		s.Pools[colorNames[c]] = urls
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename itself durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}
