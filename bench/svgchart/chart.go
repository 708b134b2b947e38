// Package svgchart draws the benchmark's charts as SVG: grouped horizontal
// bar charts, one panel per figure, stacked. It writes plain SVG 1.1 text
// with no scripts, fonts or downloads, so that a README on any forge shows
// it as an image.
package svgchart

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Bar is one value in a group.
type Bar struct {
	Series string  // the client, e.g. "relaymail"; picks the colour
	Value  float64 // NaN or negative: no bar ("n/a")
	Label  string  // the text after the bar; "" formats Value
}

// Group is a set of bars under one heading, e.g. "SMTP (smtp-sink)".
type Group struct {
	Name string
	Bars []Bar
}

// Panel is one chart: a title, a unit for the axis, and the groups.
type Panel struct {
	Title  string
	Unit   string
	Groups []Group
	// Marks are vertical reference lines (a target), by value.
	Marks []Mark
}

// Mark is a vertical line across a panel at Value, with a caption.
type Mark struct {
	Value float64
	Label string
}

// Chart is panels stacked vertically, with a title and a footnote.
type Chart struct {
	Title    string
	Footnote string
	Panels   []Panel
	// Colors maps series to fill colours; a series without one gets one
	// of a fixed palette, in order of first appearance.
	Colors map[string]string
}

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

const (
	width      = 860
	labelWidth = 210 // the group and series names left of the bars
	valueRoom  = 110 // room right of the longest bar for its label
	barHeight  = 14
	barGap     = 3
	groupGap   = 12
	panelGap   = 34
	titleRoom  = 34
)

// SVG renders the chart.
func (c Chart) SVG() string {
	colors := map[string]string{}
	for k, v := range c.Colors {
		colors[k] = v
	}
	next := 0
	color := func(series string) string {
		if col, ok := colors[series]; ok {
			return col
		}
		col := palette[next%len(palette)]
		next++
		colors[series] = col
		return col
	}
	var body strings.Builder
	y := titleRoom + 8
	if c.Title != "" {
		fmt.Fprintf(&body, `<text x="%d" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", 10, esc(c.Title))
	}
	for _, p := range c.Panels {
		y = panel(&body, p, y, color)
		y += panelGap
	}
	if c.Footnote != "" {
		for _, line := range strings.Split(c.Footnote, "\n") {
			fmt.Fprintf(&body, `<text x="10" y="%d" font-size="11" fill="#555">%s</text>`+"\n", y-panelGap/2, esc(line))
			y += 14
		}
	}
	height := y - panelGap/2 + 6
	var out strings.Builder
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&out, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	out.WriteString(body.String())
	out.WriteString("</svg>\n")
	return out.String()
}

// panel draws p from y on and returns the y below it.
func panel(w *strings.Builder, p Panel, y int, color func(string) string) int {
	fmt.Fprintf(w, `<text x="10" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", y, esc(p.Title))
	y += 10
	maxV := 0.0
	for _, g := range p.Groups {
		for _, b := range g.Bars {
			if ok(b.Value) {
				maxV = math.Max(maxV, b.Value)
			}
		}
	}
	for _, m := range p.Marks {
		maxV = math.Max(maxV, m.Value)
	}
	if maxV <= 0 {
		maxV = 1
	}
	plot := float64(width - labelWidth - valueRoom - 10)
	scale := plot / maxV
	top := y
	for _, g := range p.Groups {
		fmt.Fprintf(w, `<text x="10" y="%d" font-size="12" font-weight="bold" fill="#333">%s</text>`+"\n", y+barHeight-3, esc(g.Name))
		y += barHeight + barGap
		for _, b := range g.Bars {
			fmt.Fprintf(w, `<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>`+"\n", labelWidth-6, y+barHeight-3, esc(b.Series))
			label := b.Label
			barW := 0.0
			if ok(b.Value) {
				barW = b.Value * scale
				if label == "" {
					label = fmt.Sprintf("%.3g %s", b.Value, p.Unit)
				}
				fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelWidth, y, math.Max(barW, 1), barHeight, color(b.Series))
			} else if label == "" {
				label = "n/a"
			}
			fmt.Fprintf(w, `<text x="%.1f" y="%d" font-size="11">%s</text>`+"\n", float64(labelWidth)+barW+4, y+barHeight-3, esc(label))
			y += barHeight + barGap
		}
		y += groupGap
	}
	for _, m := range p.Marks {
		x := float64(labelWidth) + m.Value*scale
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d62728" stroke-dasharray="4,3"/>`+"\n", x, top-2, x, y-groupGap)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" font-size="10" fill="#d62728">%s</text>`+"\n", x+3, y-groupGap+11, esc(m.Label))
	}
	// The axis: zero and the maximum.
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", labelWidth, top-2, labelWidth, y-groupGap)
	return y + 4
}

func ok(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }

func esc(s string) string { return html.EscapeString(s) }
