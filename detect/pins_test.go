package detect

import (
	"context"
	"testing"
)

func TestPins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []Pin
	}{
		{"requirements", map[string]string{"app.py": "print(1)\n", "requirements.txt": "flask==3.1.0\nuvloop==0.19.0 ; sys_platform != 'win32'\nclick>=8\nrich===13.0.0\n-c constraints.txt\n", "constraints.txt": "jinja2==3.1.4\n"},
			[]Pin{{"flask", "3.1.0", "", "requirements.txt:1"}, {"uvloop", "0.19.0", "sys_platform != 'win32'", "requirements.txt:2"}, {"rich", "13.0.0", "", "requirements.txt:4"}}},
		{"pyproject", map[string]string{"app.py": "print(1)\n", "pyproject.toml": "[project]\nname = \"x\"\nversion = \"1\"\ndependencies = [\n  \"pydantic-core==2.33.2\",\n  \"anyio>=4\",\n]\n"},
			[]Pin{{"pydantic-core", "2.33.2", "", "pyproject.toml:5"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := res.Dependencies.Pins
			if len(got) != len(tc.want) {
				t.Fatalf("pins %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("pin %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
