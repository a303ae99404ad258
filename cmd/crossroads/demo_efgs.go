package main

import "github.com/crossroads-hub/crossroads/demo/efgs"

func init() { demoProfiles["efgs"] = efgs.Run }
