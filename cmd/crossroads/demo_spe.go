package main

import spedemo "github.com/crossroads-hub/crossroads/demo/spe"

// crossroads demo --profile spe: the secure-processing demo (demo/spe).
func init() { demoProfiles["spe"] = spedemo.Run }
