package main

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// dsVar is the name of the datasource template variable every panel and
// query refers to, so the dashboards import into any Grafana whatever the
// uid of its Prometheus datasource.
const dsVar = "datasource"

// instanceSel is the label matcher every query carries. With the instance
// variable on "All" it becomes instance=~".*" (see allValue below).
const instanceSel = `instance=~"$instance"`

// datasource is the reference of panels and queries to the chosen datasource.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + dsVar + "}")}
}

// datasourceVariable lets the user pick any Prometheus datasource.
func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(dsVar).
		Label("Data source").
		Type("prometheus")
}

// instanceVariable lists the exporters from nta_build_info. multi allows
// several instances and "All"; the topology dashboard keeps it single-valued
// because node ids (if:host/eth0, ...) repeat on every host and the Node
// Graph panel needs unique ids.
func instanceVariable(multi bool) *dashboard.QueryVariableBuilder {
	q := "label_values(nta_build_info, instance)"
	v := dashboard.NewQueryVariableBuilder("instance").
		Label("Instance").
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Datasource(datasource()).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v = v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

// instant is a table-formatted instant query: one row per series, one
// column per label. refID names the frame (Grafana uses it as frame name).
func instant(refID, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		RefId(refID).
		Expr(expr).
		Instant().
		Format(prometheus.PromQueryFormatTable)
}

// rangeQuery is a time-series query with a legend template.
func rangeQuery(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		RefId(refID).
		Expr(expr).
		Range().
		LegendFormat(legend)
}

// hiddenColumns are the columns of a table-formatted instant query that
// carry no information for an _info metric (the value is always 1).
// Grafana names the value column "Value" with one query and "Value #REFID"
// with several.
func hiddenColumns(refIDs ...string) map[string]bool {
	h := map[string]bool{"Time": true, "Value": true, "__name__": true, "job": true}
	for _, r := range refIDs {
		h["Value #"+r] = true
	}
	return h
}

// organize is Grafana's "Organize fields" transformation: it hides the
// columns in exclude, renames the ones in rename and orders the rest.
func organize(exclude map[string]bool, rename map[string]string, order []string) dashboard.DataTransformerConfig {
	idx := make(map[string]int, len(order))
	for i, n := range order {
		idx[n] = i
	}
	opts := map[string]any{"excludeByName": exclude}
	if len(rename) > 0 {
		opts["renameByName"] = rename
	}
	if len(idx) > 0 {
		opts["indexByName"] = idx
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: opts}
}

// legend is a table legend on the right with the usual statistics.
func legend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementRight).
		ShowLegend(true).
		Calcs([]string{"mean", "max", "lastNotNull"}).
		SortBy("Mean").
		SortDesc(true)
}

// link points to the other nta dashboards (by tag), keeping time and variables.
func link() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("nta").
		Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{"nta"}).
		AsDropdown(true).
		IncludeVars(true).
		KeepTime(true)
}
