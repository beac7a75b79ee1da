package specutils

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// RuntimeConfigFile is the runtime config's file in a bundle.
const RuntimeConfigFile = "runtime.json"

// RuntimeConfigAnnotation holds a runtime config (JSON) in the spec's
// annotations, for clients that write no file into the bundle
// (containerd, podman); it wins over a runtime.json.
const RuntimeConfigAnnotation = "dev.runsc.runtime-config"

// RuntimeConfig is what runsc create does for a container beyond the
// spec, in linuxkit's shape: directories made in its root, links put in
// its network namespace, and its namespaces pinned at host paths.
type RuntimeConfig struct {
	// Mkdir lists directories made (0755, with their parents) in the
	// container's root, as the container sees it, before it starts.
	Mkdir []string `json:"mkdir,omitempty"`
	// Interfaces are links put in the container's network namespace.
	Interfaces []Interface `json:"interfaces,omitempty"`
	// BindNS names host paths at which the container's namespaces are
	// bind-mounted.
	BindNS *BindNS `json:"bindNS,omitempty"`
}

// Interface is a link in the container's network namespace. With Add
// empty, the host's link Name is moved in. Otherwise a link of type Add
// is made: in the container's namespace, or, with CreateInRoot, in the
// host's and then moved in. A veth is always made in the host's: Name
// moves in, Peer stays in the host's namespace. A Peer without Add
// means a veth, as in linuxkit.
type Interface struct {
	Name         string `json:"name"`
	Add          string `json:"add,omitempty"`
	Peer         string `json:"peer,omitempty"`
	CreateInRoot bool   `json:"createInRoot,omitempty"`
}

// BindNS are host paths at which namespaces of the container are
// bind-mounted (empty: not bound). The file is created if missing;
// runsc delete unmounts it and removes what it created.
type BindNS struct {
	Cgroup string `json:"cgroup,omitempty"`
	IPC    string `json:"ipc,omitempty"`
	Mnt    string `json:"mnt,omitempty"`
	Net    string `json:"net,omitempty"`
	PID    string `json:"pid,omitempty"`
	User   string `json:"user,omitempty"`
	UTS    string `json:"uts,omitempty"`
}

// NSBind is one namespace binding: the namespace's name in /proc/PID/ns
// and the host path.
type NSBind struct {
	NS, Path string
}

// List returns the bindings asked for, in a fixed order.
func (b *BindNS) List() []NSBind {
	if b == nil {
		return nil
	}
	var out []NSBind
	for _, e := range []NSBind{{"cgroup", b.Cgroup}, {"ipc", b.IPC}, {"mnt", b.Mnt}, {"net", b.Net}, {"pid", b.PID}, {"user", b.User}, {"uts", b.UTS}} {
		if e.Path != "" {
			out = append(out, e)
		}
	}
	return out
}

// LinkNameMax is the longest link name the kernel takes (IFNAMSIZ - 1).
const LinkNameMax = 15

// ValidateLinkName checks a network link name as the kernel does.
func ValidateLinkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty link name")
	case len(name) > LinkNameMax:
		return fmt.Errorf("%q is longer than %d bytes", name, LinkNameMax)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a link name", name)
	case strings.ContainsAny(name, "/:% \t\n\v\f\r\x00"):
		return fmt.Errorf("%q holds a character a link name may not (/, :, %%, whitespace)", name)
	}
	return nil
}

// LoadRuntimeConfig returns the runtime config of a bundle: the spec's
// annotation if it has one, else the bundle's runtime.json, else nil.
func LoadRuntimeConfig(bundle string, annotations map[string]string) (*RuntimeConfig, error) {
	if a, ok := annotations[RuntimeConfigAnnotation]; ok {
		c, err := ParseRuntimeConfig([]byte(a))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", RuntimeConfigAnnotation, err)
		}
		return c, nil
	}
	data, err := os.ReadFile(filepath.Join(bundle, RuntimeConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", RuntimeConfigFile, err)
	}
	c, err := ParseRuntimeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RuntimeConfigFile, err)
	}
	return c, nil
}

// ParseRuntimeConfig decodes and validates a runtime config. Errors are
// one line naming the field ("interfaces[1].peer: a veth needs a
// peer"). Unknown fields are refused: a misspelt key would silently do
// nothing.
func ParseRuntimeConfig(data []byte) (*RuntimeConfig, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var c RuntimeConfig
	if err := dec.Decode(&c); err != nil {
		return nil, decodeMsg(err, "a runtime config")
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: data after the runtime config")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks every field, and normalizes: a peer implies a veth.
func (c *RuntimeConfig) validate() error {
	for i, d := range c.Mkdir {
		if !path.IsAbs(d) || hasDotDot(d) {
			return fmt.Errorf("mkdir[%d] %q: want an absolute path without ..", i, d)
		}
	}
	names := map[string]string{}
	claim := func(field, name string) error {
		if prev, ok := names[name]; ok {
			return fmt.Errorf("%s: %q is already %s", field, name, prev)
		}
		names[name] = field
		return nil
	}
	for i := range c.Interfaces {
		ifc := &c.Interfaces[i]
		field := fmt.Sprintf("interfaces[%d]", i)
		if err := ValidateLinkName(ifc.Name); err != nil {
			return fmt.Errorf("%s.name: %v", field, err)
		}
		if err := claim(field+".name", ifc.Name); err != nil {
			return err
		}
		if ifc.Peer != "" && ifc.Add == "" {
			ifc.Add = "veth"
		}
		switch {
		case ifc.Add == "" && ifc.CreateInRoot:
			return fmt.Errorf("%s.createInRoot: needs add (a link to make)", field)
		case ifc.Add == "veth" && ifc.Peer == "":
			return fmt.Errorf("%s.peer: a veth needs a peer", field)
		case ifc.Add != "veth" && ifc.Peer != "":
			return fmt.Errorf("%s.peer: only a veth has a peer, not a %q link", field, ifc.Add)
		case ifc.Add != "" && (len(ifc.Add) > 64 || strings.ContainsAny(ifc.Add, "/ \t\n\x00")):
			return fmt.Errorf("%s.add %q: not a link type", field, ifc.Add)
		}
		if ifc.Peer != "" {
			if err := ValidateLinkName(ifc.Peer); err != nil {
				return fmt.Errorf("%s.peer: %v", field, err)
			}
			if err := claim(field+".peer", ifc.Peer); err != nil {
				return err
			}
		}
	}
	paths := map[string]string{}
	for _, b := range c.BindNS.List() {
		field := "bindNS." + b.NS
		if !path.IsAbs(b.Path) || hasDotDot(b.Path) || path.Clean(b.Path) == "/" {
			return fmt.Errorf("%s %q: want an absolute file path without ..", field, b.Path)
		}
		clean := path.Clean(b.Path)
		if prev, ok := paths[clean]; ok {
			return fmt.Errorf("%s %q: already the path of %s", field, b.Path, prev)
		}
		paths[clean] = field
	}
	return nil
}
