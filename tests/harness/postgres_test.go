package harness

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresHelpers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx := context.Background()
	for name, url := range map[string]string{"shared": PostgresDB(t), "private": StartPostgres(t).URL()} {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var one int
		if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
			t.Errorf("%s: select 1 = %d, %v", name, one, err)
		}
		c.Close(ctx)
	}
}
