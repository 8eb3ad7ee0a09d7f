// Package promread reads a metric from a Prometheus gatherer, for tests.
package promread

import "github.com/prometheus/client_golang/prometheus"

// Value is the value of the gauge or counter name whose one label has the value label; -1 when
// there is none.
func Value(g prometheus.Gatherer, name, label string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue(), nil
			}
		}
	}
	return -1, nil
}
