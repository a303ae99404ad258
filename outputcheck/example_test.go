package outputcheck_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/aggregate"
	"github.com/crossroads-hub/crossroads/outputcheck"
)

// The workspace's flow: run the query, check it against the permit's rules
// and earlier releases, release what passed, record the release.
func Example() {
	csv := "region,age\n" + strings.Repeat("East,30\n", 28) + strings.Repeat("East,17\n", 3) + strings.Repeat("West,40\n", 30)
	rules := outputcheck.DefaultRules()
	var history outputcheck.History // persisted per permit by the caller

	ask := func(id, query string) {
		q, err := aggregate.ParseQuery([]byte(query))
		if err != nil {
			panic(err)
		}
		t, err := aggregate.Run(context.Background(), strings.NewReader(csv), q, aggregate.Limits{})
		if err != nil {
			panic(err)
		}
		res, err := outputcheck.CheckRelease(rules, history, q, t)
		if err != nil {
			panic(err)
		}
		if res.Refused {
			fmt.Printf("%s: refused: %s\n", id, res.Differencing[0].Detail)
			return
		}
		released := res.Released(t)
		fmt.Printf("%s: %s, %d cells released\n", id, res.Status, len(released.Cells))
		history.Add(outputcheck.NewRelease(id, time.Now(), q, t, res))
	}
	ask("q1", `{"dataset":"people.csv","index":["region"],"statistic":"count"}`)
	ask("q2", `{"dataset":"people.csv","index":["region"],"statistic":"count","filters":[{"column":"age","op":"ge","value":18}]}`)
	// Output:
	// q1: pass, 2 cells released
	// q2: refused: 3 of 31 rows in cell ["East"] do not meet age ge "18"
}
