package specutils

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRuntimeConfig(t *testing.T) {
	good := `{"mkdir":["/var/lib/x"],"interfaces":[{"name":"eth1","peer":"veth-h"},{"name":"dummy0","add":"dummy","createInRoot":true},{"name":"wan0"}],"bindNS":{"net":"/run/netns/x","uts":"/run/uts/x"}}`
	c, err := ParseRuntimeConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Interfaces[0].Add != "veth" {
		t.Errorf("a peer without add gave add %q, want veth", c.Interfaces[0].Add)
	}
	if got := c.BindNS.List(); len(got) != 2 || got[0] != (NSBind{"net", "/run/netns/x"}) || got[1] != (NSBind{"uts", "/run/uts/x"}) {
		t.Errorf("bindings %v", got)
	}
	for _, tc := range []struct{ name, json, want string }{
		{"missing peer", `{"interfaces":[{"name":"a","add":"dummy"},{"name":"b","add":"veth"}]}`, "interfaces[1].peer: a veth needs a peer"},
		{"long name", `{"interfaces":[{"name":"abcdefghijklmnop","add":"dummy"}]}`, "interfaces[0].name: \"abcdefghijklmnop\" is longer than 15 bytes"},
		{"long peer", `{"interfaces":[{"name":"a","peer":"abcdefghijklmnop"}]}`, "interfaces[0].peer: \"abcdefghijklmnop\" is longer than 15 bytes"},
		{"no name", `{"interfaces":[{"add":"dummy"}]}`, "interfaces[0].name: empty link name"},
		{"slash", `{"interfaces":[{"name":"a/b","add":"dummy"}]}`, "interfaces[0].name: \"a/b\" holds"},
		{"peer on dummy", `{"interfaces":[{"name":"a","add":"dummy","peer":"b"}]}`, "interfaces[0].peer: only a veth has a peer"},
		{"root without add", `{"interfaces":[{"name":"a","createInRoot":true}]}`, "interfaces[0].createInRoot: needs add"},
		{"same name", `{"interfaces":[{"name":"a","add":"dummy"},{"name":"b","peer":"a"}]}`, "interfaces[1].peer: \"a\" is already interfaces[0].name"},
		{"relative mkdir", `{"mkdir":["/a","b"]}`, "mkdir[1] \"b\": want an absolute path"},
		{"dotdot mkdir", `{"mkdir":["/a/../b"]}`, "mkdir[0] \"/a/../b\""},
		{"relative bind", `{"bindNS":{"net":"netns"}}`, "bindNS.net \"netns\": want an absolute file path"},
		{"root bind", `{"bindNS":{"uts":"/"}}`, "bindNS.uts \"/\""},
		{"same bind", `{"bindNS":{"net":"/run/x","uts":"/run//x"}}`, "bindNS.uts \"/run//x\": already the path of bindNS.net"},
		{"unknown field", `{"interface":[]}`, "unknown field \"interface\""},
		{"wrong type", `{"mkdir":"/a"}`, "mkdir: cannot decode JSON string"},
		{"trailing", `{} {}`, "data after the runtime config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseRuntimeConfig([]byte(tc.json))
			if err == nil {
				t.Fatalf("accepted %s: %+v", tc.json, c)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line with %q", err, tc.want)
			}
		})
	}
}

func TestLoadRuntimeConfig(t *testing.T) {
	dir := t.TempDir()
	if c, err := LoadRuntimeConfig(dir, nil); c != nil || err != nil {
		t.Fatalf("no config: got %+v, %v", c, err)
	}
	if err := os.WriteFile(filepath.Join(dir, RuntimeConfigFile), []byte(`{"mkdir":["/from-file"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadRuntimeConfig(dir, nil)
	if err != nil || len(c.Mkdir) != 1 || c.Mkdir[0] != "/from-file" {
		t.Fatalf("runtime.json: got %+v, %v", c, err)
	}
	c, err = LoadRuntimeConfig(dir, map[string]string{RuntimeConfigAnnotation: `{"mkdir":["/from-annotation"]}`})
	if err != nil || len(c.Mkdir) != 1 || c.Mkdir[0] != "/from-annotation" {
		t.Fatalf("annotation: got %+v, %v", c, err)
	}
	_, err = LoadRuntimeConfig(dir, map[string]string{RuntimeConfigAnnotation: `{"mkdir":[1]}`})
	if err == nil || !strings.HasPrefix(err.Error(), "annotation "+RuntimeConfigAnnotation+": mkdir") {
		t.Fatalf("bad annotation: %v", err)
	}
	os.WriteFile(filepath.Join(dir, RuntimeConfigFile), []byte(`{`), 0o644)
	if _, err := LoadRuntimeConfig(dir, nil); err == nil || !strings.HasPrefix(err.Error(), RuntimeConfigFile+": ") {
		t.Fatalf("bad runtime.json: %v", err)
	}
}

func FuzzParseRuntimeConfig(f *testing.F) {
	f.Add([]byte(`{"mkdir":["/a"],"interfaces":[{"name":"eth1","peer":"h1"},{"name":"d","add":"dummy","createInRoot":true}],"bindNS":{"net":"/run/n","mnt":"/run/m"}}`))
	f.Add([]byte(`{"interfaces":[{"name":"wan0"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseRuntimeConfig(data)
		if err != nil {
			if c != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q (config %+v)", err, c)
			}
			return
		}
		for _, d := range c.Mkdir {
			if !strings.HasPrefix(d, "/") || hasDotDot(d) {
				t.Fatalf("accepted mkdir %q", d)
			}
		}
		for _, ifc := range c.Interfaces {
			if ValidateLinkName(ifc.Name) != nil || (ifc.Add == "veth") != (ifc.Peer != "") {
				t.Fatalf("accepted interface %+v", ifc)
			}
		}
		for _, b := range c.BindNS.List() {
			if !strings.HasPrefix(b.Path, "/") || hasDotDot(b.Path) {
				t.Fatalf("accepted binding %+v", b)
			}
		}
	})
}
