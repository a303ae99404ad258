package aggregate

import (
	"context"
	"strings"
	"testing"
)

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`{"dataset":"visits.csv","filters":[{"column":"age","op":"ge","value":18}],"index":["region"],"columns":["sex"],"statistic":"mean","value":"cost"}`,
		`{"dataset":"d","index":["a","b"],"statistic":"quantile","value":"v","q":0.9,"bounds":{"lower":-1,"upper":1}}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"in","values":["x",1,true]}]}`,
		`{}`, `null`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuery(b)
		if err != nil {
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("parsed query does not validate: %v", err)
		}
		for _, fl := range q.Filters {
			c := fl.Canonical()
			if c.Canonical().String() != c.String() {
				t.Fatalf("canonical form not stable: %s", fl)
			}
		}
	})
}

func FuzzRun(f *testing.F) {
	f.Add("region,sex,cost\nEast,F,10\nWest,M,\n,F,3\n", "cost", uint8(0))
	f.Add("a,b\n\"x,y\",1\n\"q\"\"\",2e3\n", "b", uint8(2))
	f.Add("\ufeffa,b\r\nx,-1\r\n", "b", uint8(3))
	f.Add("a,b\nx\n", "b", uint8(1))
	f.Add("a,b\nx,1\nx,2\ny,\n", "b", uint8(0x81))
	stats := []Statistic{Count, Sum, Mean, Median, Quantile}
	f.Fuzz(func(t *testing.T, csv, value string, s uint8) {
		q := Query{Dataset: "d", Index: []string{"a"}, Statistic: stats[int(s)%len(stats)], Value: "b"}
		if strings.HasPrefix(csv, "region") {
			q.Index, q.Columns, q.Value = []string{"region"}, []string{"sex"}, value
		}
		if q.Statistic == Quantile {
			q.Q = 0.3
		}
		if s&0x80 != 0 {
			q.Unit = "a"
		}
		if q.Validate() != nil {
			return
		}
		tab, err := Run(context.Background(), strings.NewReader(csv), q, Limits{MaxCells: 1000, MaxValues: 10000})
		if err != nil {
			return
		}
		for _, c := range tab.Cells {
			if c.N < 0 || c.Missing < 0 || len(c.Top) > TopContributions || len(c.Index) != len(q.Index) || len(c.Column) != len(q.Columns) {
				t.Fatalf("bad cell %+v", c)
			}
			for i := 1; i < len(c.Top); i++ {
				if c.Top[i] > c.Top[i-1] {
					t.Fatalf("top not descending: %v", c.Top)
				}
			}
		}
		for i := 1; i < len(tab.Cells); i++ {
			a, b := tab.Cells[i-1], tab.Cells[i]
			if k := CompareLabels(a.Index, b.Index); k > 0 || (k == 0 && CompareLabels(a.Column, b.Column) >= 0) {
				t.Fatalf("cells out of order: %v %v then %v %v", a.Index, a.Column, b.Index, b.Column)
			}
		}
	})
}
