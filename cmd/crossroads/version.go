package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime/debug"
)

// errUsage reports bad flags; the flag package has already said why.
var errUsage = errors.New("usage")

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func init() {
	register("version", "print the version", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if err := fs.Parse(args); err != nil {
			return flagErr(err)
		}
		v := version
		if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		fmt.Println("crossroads", v)
		return nil
	})
}

// flagErr turns a flag parsing error into errUsage, and -h into success.
func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return errUsage
}
