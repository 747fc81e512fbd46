// Command cutover starts and steers releases; package starter is all of it.
//
//	CGO_ENABLED=0 go install github.com/cutoverhq/cutover/cmd/cutover@latest
package main

import (
	"os"

	"github.com/cutoverhq/cutover/starter"
)

func main() {
	os.Exit(starter.Main(os.Args[1:], os.Stdout, os.Stderr))
}
