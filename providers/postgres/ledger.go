package postgres

import (
	"context"
	"fmt"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/postgres/ledger"
)

var _ providers.Recorder = (*Provider)(nil)

// Record writes one event to the release ledger in the database at url. The
// ledger stores each (release, seq) once, so a retried write is harmless.
func (p *Provider) Record(ctx context.Context, e providers.LedgerEvent) error {
	s, err := p.ledgerStore(ctx)
	if err != nil {
		return err
	}
	return s.Record(ctx, e)
}

// ledgerStore opens the ledger once; a failed open is retried on the next call.
func (p *Provider) ledgerStore(ctx context.Context) (*ledger.Store, error) {
	p.ledgerMu.Lock()
	defer p.ledgerMu.Unlock()
	if p.ledger != nil {
		return p.ledger, nil
	}
	url, err := p.URL()
	if err != nil {
		return nil, err
	}
	s, err := ledger.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open the release ledger: %w", err)
	}
	p.ledger = s
	return s, nil
}
