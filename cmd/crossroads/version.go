package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…"; by
// default it is the module version from the build information.
var version = ""

func init() {
	register("version", "print the module version and VCS revision", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		fs.Usage = func() {
			fmt.Fprintln(fs.Output(), "usage: crossroads version\n\nPrints the module version and the VCS revision it was built from (from the build information).")
			fs.PrintDefaults()
		}
		if err := parseConfig(fs, args); err != nil {
			return err
		}
		bi, _ := debug.ReadBuildInfo()
		printVersion(os.Stdout, bi)
		return nil
	})
}

// printVersion writes "crossroads VERSION (revision REV[, modified], TIME, GO)".
func printVersion(w io.Writer, bi *debug.BuildInfo) {
	v, rev, at, modified, goVersion := version, "unknown", "", false, ""
	if bi != nil {
		goVersion = bi.GoVersion
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	fmt.Fprintf(w, "crossroads %s (revision %s", v, rev)
	if modified {
		fmt.Fprint(w, ", modified")
	}
	if at != "" {
		fmt.Fprintf(w, ", %s", at)
	}
	if goVersion != "" {
		fmt.Fprintf(w, ", %s", goVersion)
	}
	fmt.Fprintln(w, ")")
}
