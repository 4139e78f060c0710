package ovsview

import "github.com/ovn-org/libovsdb/model"

// The rows of the Open_vSwitch database the view reads: only the columns it
// uses (libovsdb checks them against the server's schema at connect), with
// the types the vswitch schema gives them (an optional column is a pointer,
// a set a slice, a map a map). Written by hand rather than by modelgen: five
// small structs are easier to read than the generated 5,000 lines.

type ovsRoot struct {
	UUID        string            `ovsdb:"_uuid"`
	Bridges     []string          `ovsdb:"bridges"`
	OVSVersion  *string           `ovsdb:"ovs_version"`
	DBVersion   *string           `ovsdb:"db_version"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type ovsBridge struct {
	UUID         string            `ovsdb:"_uuid"`
	Name         string            `ovsdb:"name"`
	DatapathType string            `ovsdb:"datapath_type"`
	FailMode     *string           `ovsdb:"fail_mode"`
	Controller   []string          `ovsdb:"controller"`
	Ports        []string          `ovsdb:"ports"`
	ExternalIDs  map[string]string `ovsdb:"external_ids"`
}

type ovsController struct {
	UUID        string `ovsdb:"_uuid"`
	Target      string `ovsdb:"target"`
	IsConnected bool   `ovsdb:"is_connected"`
}

type ovsPort struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	Tag         *int              `ovsdb:"tag"`
	Trunks      []int             `ovsdb:"trunks"`
	BondMode    *string           `ovsdb:"bond_mode"`
	VLANMode    *string           `ovsdb:"vlan_mode"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type ovsInterface struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Type        string            `ovsdb:"type"`
	OFPort      *int              `ovsdb:"ofport"`
	MACInUse    *string           `ovsdb:"mac_in_use"`
	AdminState  *string           `ovsdb:"admin_state"`
	LinkState   *string           `ovsdb:"link_state"`
	Options     map[string]string `ovsdb:"options"`
	Status      map[string]string `ovsdb:"status"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
	Statistics  map[string]int    `ovsdb:"statistics"`
	Error       *string           `ovsdb:"error"`
}

const (
	tableRoot       = "Open_vSwitch"
	tableBridge     = "Bridge"
	tableController = "Controller"
	tablePort       = "Port"
	tableInterface  = "Interface"
)

// clientModel is the database model the client monitors.
func clientModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		tableRoot:       &ovsRoot{},
		tableBridge:     &ovsBridge{},
		tableController: &ovsController{},
		tablePort:       &ovsPort{},
		tableInterface:  &ovsInterface{},
	})
}
