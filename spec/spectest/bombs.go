// Package spectest builds the specs that the parser's budget must refuse
// quickly (the security review's alias and merge bombs), for the spec's own
// tests and for those of the doors that parse specs.
package spectest

import (
	"fmt"
	"strings"
)

// MergeBomb is a small spec whose providers.environment merges a mapping that
// merges fan copies of a mapping that merges ... levels deep: fan^levels
// mappings to decode if merges are followed without a budget.
func MergeBomb(levels, fan int) string {
	node := "&a0 {type: memory}"
	for i := 1; i <= levels; i++ {
		node = fmt.Sprintf("&a%d {<<: [%s%s]}", i, node, strings.Repeat(fmt.Sprintf(",*a%d", i-1), fan-1))
	}
	return "app: shop-api\nversion: 1.4.0\nproviders:\n  environment: {<<: [" + node + "]}\n" +
		"  traffic: {type: memory}\n  analysis: {type: memory}\nplan: [provision, validate, promote]\n"
}

// laughs writes the settings of an environment provider in the style of the
// billion laughs: lists of ten aliases nested levels deep (11 * 10^levels
// nodes), next to pad plain nodes, enough that yaml.v3's own check (at most
// 99% of the nodes it decodes may come from aliases) lets them through. The
// settings are anchored as &s.
func laughs(b *strings.Builder, pad, levels int) {
	b.WriteString("app: shop-api\nversion: 1.4.0\nproviders:\n  environment:\n    type: memory\n    settings: &s\n")
	b.WriteString("      pad: [x" + strings.Repeat(", x", pad-1) + "]\n")
	b.WriteString("      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(b, "      l%d: &l%d [*l%d%s]\n", i, i, i-1, strings.Repeat(fmt.Sprintf(", *l%d", i-1), 9))
	}
}

// AliasBomb is a spec of about 21 KB: settings of 11,000 nodes from a few
// hundred bytes, used again by a few hundred providers (yaml.v3's check starts
// afresh on each), and a plan whose hundreds of steps share one long smoke
// list.
func AliasBomb() string {
	var b strings.Builder
	laughs(&b, 300, 3)
	b.WriteString("  traffic: &p {type: memory, settings: *s}\n  analysis: {type: memory, settings: *s}\n")
	b.WriteString("  notifications: [*p" + strings.Repeat(", *p", 299) + "]\n")
	b.WriteString("plan:\n  - provision\n  - validate: {smoke: &smoke [/a" + strings.Repeat(", /a", 999) + "]}\n")
	for range 500 {
		b.WriteString("  - validate: {smoke: *smoke}\n")
	}
	b.WriteString("  - promote\n")
	return b.String()
}

// SettingsBomb is a spec whose one settings mapping expands to 110,000 nodes
// from 12 KB, which yaml.v3's own check lets through.
func SettingsBomb() string {
	var b strings.Builder
	laughs(&b, 4000, 4)
	b.WriteString("  traffic: {type: memory}\n  analysis: {type: memory}\nplan: [provision, validate, promote]\n")
	return b.String()
}
