package svgchart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

func TestSVGIsWellFormed(t *testing.T) {
	c := Chart{
		Title:    "Caller latency <2 KB> & round trips",
		Footnote: "make bench\nsecond line",
		Colors:   map[string]string{"relaymail": "#d62728"},
		Panels: []Panel{
			{Title: "latency", Unit: "ms", Groups: []Group{
				{Name: "SMTP", Bars: []Bar{{Series: "relaymail", Value: 3.1}, {Series: "msmtp", Value: 51}, {Series: "dma", Value: math.NaN()}}},
				{Name: "QMTP", Bars: []Bar{{Series: "relaymail", Value: 2.9, Label: "2.9 ms (QMTP)"}}},
			}, Marks: []Mark{{Value: 5, Label: "target"}}},
			{Title: "empty", Unit: "x"},
		},
	}
	svg := c.SVG()
	d := xml.NewDecoder(strings.NewReader(svg))
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects != 1+3 { // the background and three bars; NaN has none
		t.Errorf("%d rect elements, want 4", rects)
	}
	for _, want := range []string{"n/a", "2.9 ms (QMTP)", "51 ms", "&lt;2 KB&gt; &amp;", `fill="#d62728"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
}
