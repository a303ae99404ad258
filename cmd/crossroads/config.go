package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseConfig parses args into fs with parseArgs and refuses positional
// arguments.
func parseConfig(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", join(pos))
		return errUsage
	}
	return nil
}

// parseArgs is how every command reads its settings. It parses args into
// fs (flags and positional arguments may be interleaved: 'get participants
// -o json'), then fills every flag not given on the command line from the
// environment (CROSSROADS_<FLAG_NAME>) and, failing that, from the
// optional YAML file named by --config (keys are flag names; a YAML list
// sets a repeatable flag once per item). Precedence: flag > environment >
// file > default. It returns the positional arguments; with -h or --help
// it prints the usage on standard output and returns errHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var configFile string
	if fs.Lookup("config") == nil {
		fs.StringVar(&configFile, "config", os.Getenv("CROSSROADS_CONFIG"), "optional YAML file of flag values (env CROSSROADS_CONFIG)")
	}
	if wantsHelp(args) {
		fs.SetOutput(os.Stdout)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // after "--", nothing is a flag
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var file map[string]any
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("config file %s: %w", configFile, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return nil, fmt.Errorf("config file %s: unknown setting %q", configFile, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" || err != nil {
			return
		}
		env := "CROSSROADS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		switch v := v.(type) {
		case []any:
			for _, item := range v {
				if e := setScalar(fs, f.Name, item); e != nil {
					err = e
					return
				}
			}
		default:
			err = setScalar(fs, f.Name, v)
		}
	})
	return pos, err
}

func setScalar(fs *flag.FlagSet, name string, v any) error {
	switch v.(type) {
	case map[string]any, []any, nil:
		return fmt.Errorf("config %s: want a value or a list of values", name)
	}
	if e := fs.Set(name, fmt.Sprint(v)); e != nil {
		return fmt.Errorf("config %s: %w", name, e)
	}
	return nil
}

// isSet reports whether the flag got a value from the command line, the
// environment or the config file (after parseArgs).
func isSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// listFlag collects a repeatable string flag; a value may also be a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
