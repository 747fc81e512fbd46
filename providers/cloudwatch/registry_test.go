package cloudwatch_test

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/providers/cloudwatch"
	"github.com/cutoverhq/cutover/spec"
)

// The provider is an analysis source that reads per-period steps.
var _ interface {
	analysis.Source
	analysis.Stepper
} = (*cloudwatch.Provider)(nil)

func TestRegistered(t *testing.T) {
	r := builtin.NewRegistry(slog.New(slog.DiscardHandler))
	if !slices.Contains(r.Types(), cloudwatch.Type) {
		t.Fatalf("types %v lack %s", r.Types(), cloudwatch.Type)
	}
	err := r.Check("analysis", spec.Provider{Type: cloudwatch.Type, Settings: map[string]any{
		"region":           "eu-west-1",
		"loadBalancer":     "app/shop/50dc6c495c0c9188",
		"blueTargetGroup":  "targetgroup/shop-blue/73e2d6bc24d8a067",
		"greenTargetGroup": "targetgroup/shop-green/1f5e8a9c3d2b4e6f",
	}})
	if err != nil {
		t.Fatal(err)
	}
}
