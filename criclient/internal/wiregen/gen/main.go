// Command gen writes criclient/internal/wire's wire_gen.go (see package wiregen).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/podunit/podunit/criclient/internal/wiregen"
)

func main() {
	out := flag.String("o", "wire_gen.go", "file to write")
	flag.Parse()
	src, err := wiregen.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiregen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "wiregen:", err)
		os.Exit(1)
	}
}
