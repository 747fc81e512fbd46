// Command cutover-worker runs release workflows and their activities; package
// worker is all of it.
//
//	CGO_ENABLED=0 go install github.com/cutoverhq/cutover/cmd/cutover-worker@latest
package main

import (
	"os"

	"github.com/cutoverhq/cutover/worker"
)

func main() {
	os.Exit(worker.Main(os.Args[1:], os.Stdout, os.Stderr))
}
