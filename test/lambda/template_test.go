package lambdatest

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/awslabs/goformation/v7/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wsgate/wsgate/infra/dynamodb"
	"github.com/wsgate/wsgate/internal/settings"
)

// notForLambdas are the settings a Lambda has no use for, with the reason;
// every other WSGATE_* setting must be wired in template.yaml.
var notForLambdas = map[string]string{
	"WSGATE_ADDR":            "listen address of the local server",
	"WSGATE_PING_INTERVAL":   "API Gateway answers the protocol pings",
	"WSGATE_IDLE_TIMEOUT":    "API Gateway's own 10-minute idle timeout applies",
	"WSGATE_TRUSTED_PROXIES": "the client IP is requestContext.identity.sourceIp",
	"WSGATE_STORE":           "the Lambdas always use the DynamoDB store",
	"WSGATE_ADVERTISE_URL":   "Lambdas are reached through API Gateway, not an @connections URL",
}

// tmpl is template.yaml as generic JSON, intrinsics in long form.
type tmpl struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Globals    map[string]map[string]any
	Resources  map[string]resource
	Outputs    map[string]map[string]any
	Transform  any
	raw        map[string]any
}

type resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	DependsOn  any
}

var (
	loadOnce sync.Once
	loaded   *tmpl
	loadErr  error
)

// templatePath is template.yaml at the repository root.
func templatePath() string { return filepath.Join(repoRoot(), "template.yaml") }

// loadTemplate reads template.yaml with its intrinsics left unresolved.
func loadTemplate(t *testing.T) *tmpl {
	t.Helper()
	loadOnce.Do(func() {
		var b []byte
		if b, loadErr = os.ReadFile(templatePath()); loadErr != nil {
			return
		}
		var js []byte
		if js, loadErr = intrinsics.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true}); loadErr != nil {
			return
		}
		loaded = &tmpl{}
		if loadErr = json.Unmarshal(js, loaded); loadErr != nil {
			return
		}
		loadErr = json.Unmarshal(js, &loaded.raw)
	})
	if loadErr != nil {
		t.Fatalf("template.yaml: %v", loadErr)
	}
	return loaded
}

// ofType returns the logical ids of the resources of type typ, sorted.
func (tp *tmpl) ofType(typ string) []string {
	var ids []string
	for id, r := range tp.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// one returns the logical id of the only resource of type typ.
func (tp *tmpl) one(t *testing.T, typ string) string {
	t.Helper()
	ids := tp.ofType(typ)
	if len(ids) != 1 {
		t.Fatalf("template has %d %s resources (%v), want 1", len(ids), typ, ids)
	}
	return ids[0]
}

// functionProp is a function's property, or the Globals default.
func (tp *tmpl) functionProp(id, name string) any {
	if v, ok := tp.Resources[id].Properties[name]; ok {
		return v
	}
	return tp.Globals["Function"][name]
}

// envVars returns the environment variable names of function id, Globals
// included.
func (tp *tmpl) envVars(id string) map[string]any {
	vars := map[string]any{}
	for _, src := range []map[string]any{tp.Globals["Function"], tp.Resources[id].Properties} {
		if env, ok := src["Environment"].(map[string]any); ok {
			if vs, ok := env["Variables"].(map[string]any); ok {
				for k, v := range vs {
					vars[k] = v
				}
			}
		}
	}
	return vars
}

// TestTemplateParses: goformation v7 reads the template as SAM and finds
// the stack's parts with their properties.
func TestTemplateParses(t *testing.T) {
	t.Parallel()
	// CloudFormation converts a parameter to the type each property needs;
	// goformation's typed model cannot, so Ref gives the default in the
	// parameter's declared type (Number parameters reach string properties
	// through !Sub).
	cf, err := goformation.OpenWithOptions(templatePath(), &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Ref": typedRef},
	})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	if tr := cf.Transform; tr == nil || tr.String == nil || *tr.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform %+v, want AWS::Serverless-2016-10-31", tr)
	}
	fns := cf.GetAllServerlessFunctionResources()
	if len(fns) != 2 || fns["WebSocketFunction"] == nil || fns["AdminFunction"] == nil {
		t.Fatalf("functions %v, want WebSocketFunction and AdminFunction", keys(fns))
	}
	apis := cf.GetAllApiGatewayV2ApiResources()
	if len(apis) != 1 {
		t.Fatalf("%d ApiGatewayV2 APIs, want 1", len(apis))
	}
	for _, api := range apis {
		if aws.ToString(api.ProtocolType) != "WEBSOCKET" || aws.ToString(api.RouteSelectionExpression) != "$request.body.type" {
			t.Errorf("WebSocket API %+v", api)
		}
	}
	if n := len(cf.GetAllServerlessHttpApiResources()); n != 1 {
		t.Errorf("%d HTTP APIs, want 1", n)
	}
	tables := cf.GetAllDynamoDBTableResources()
	if len(tables) != 1 {
		t.Fatalf("%d tables, want 1", len(tables))
	}
	for _, tb := range tables {
		if aws.ToString(tb.BillingMode) != "PAY_PER_REQUEST" || tb.TimeToLiveSpecification == nil || !tb.TimeToLiveSpecification.Enabled {
			t.Errorf("table %+v", tb)
		}
	}
	for id, f := range fns {
		if f.AWSCloudFormationMetadata["BuildMethod"] != "makefile" {
			t.Errorf("%s: Metadata %v, want BuildMethod makefile", id, f.AWSCloudFormationMetadata)
		}
	}
}

// TestTemplateSchema: every resource, parameter, output and the Globals
// validate against the SAM/CloudFormation JSON schema goformation bundles,
// with intrinsics replaced by placeholders of the right type first.
func TestTemplateSchema(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	full, err := jsonschema.UnmarshalJSON(strings.NewReader(schema.SamSchema))
	if err != nil {
		t.Fatal(err)
	}
	// Compiling the 7 MB schema whole takes minutes under -race (the
	// compiler checks it against its metaschema): keep the parts this
	// template reaches.
	var roots []string
	for _, r := range tp.Resources {
		roots = append(roots, r.Type)
	}
	doc := reachable(full.(map[string]any), roots, "Parameters", "Outputs", "Globals", "Conditions")
	const base = "https://wsgate.invalid/sam.schema.json"
	c := jsonschema.NewCompiler()
	if err := c.AddResource(base, doc); err != nil {
		t.Fatal(err)
	}
	compiled := map[string]*jsonschema.Schema{}
	validate := func(what, pointer string, v any, replace bool) {
		t.Helper()
		sch, ok := compiled[pointer]
		if !ok {
			if sch, err = c.Compile(base + "#" + pointer); err != nil {
				t.Errorf("%s: no schema at %s: %v", what, pointer, err)
				return
			}
			compiled[pointer] = sch
		}
		if replace {
			v = placeholders(v, tp.raw)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(t, v)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s does not validate:\n%v", what, err)
		}
	}
	for _, id := range sortedKeys(tp.raw["Resources"].(map[string]any)) {
		r := tp.raw["Resources"].(map[string]any)[id]
		validate("resource "+id, "/definitions/"+tp.Resources[id].Type, r, true)
	}
	validate("Parameters", "/properties/Parameters", tp.raw["Parameters"], true)
	validate("Outputs", "/properties/Outputs", tp.raw["Outputs"], true)
	validate("Globals", "/properties/Globals", tp.raw["Globals"], true)
	// Conditions are intrinsics themselves: validated as written.
	validate("Conditions", "/properties/Conditions", tp.raw["Conditions"], false)
}

// reachable returns the part of the SAM schema needed to validate the
// definitions named and the top-level properties named: those, and every
// definition they reach through "$ref", without the schema's "$id" (it
// claims draft-04's own).
func reachable(full map[string]any, definitions []string, properties ...string) map[string]any {
	defs, _ := full["definitions"].(map[string]any)
	props, _ := full["properties"].(map[string]any)
	out := map[string]any{"definitions": map[string]any{}, "properties": map[string]any{}}
	seen := map[string]bool{}
	var walk func(v any)
	add := func(name string) {
		if d, ok := defs[name]; ok && !seen[name] {
			seen[name] = true
			out["definitions"].(map[string]any)[name] = d
			walk(d)
		}
	}
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if ref, ok := e.(string); ok && k == "$ref" {
					add(strings.TrimPrefix(ref, "#/definitions/"))
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for _, d := range definitions {
		add(d)
	}
	for _, p := range properties {
		out["properties"].(map[string]any)[p] = props[p]
		walk(props[p])
	}
	return out
}

// typedRef resolves Ref to a parameter's default, a number for Number
// parameters, and other Refs as goformation does.
func typedRef(name string, input, template any) any {
	if p, ok := paramDefault(fmt.Sprint(input), template); ok {
		return p
	}
	return intrinsics.Ref(name, input, template)
}

// paramDefault is the default of parameter name in tmpl, typed as the
// parameter's Type says.
func paramDefault(name string, tmpl any) (any, bool) {
	t, _ := tmpl.(map[string]any)
	params, _ := t["Parameters"].(map[string]any)
	p, _ := params[name].(map[string]any)
	d, ok := p["Default"]
	if !ok {
		return nil, false
	}
	if p["Type"] == "Number" {
		if f, err := strconv.ParseFloat(fmt.Sprint(d), 64); err == nil {
			return f, true
		}
	}
	return d, true
}

// placeholders replaces intrinsic functions with values of the type they
// stand for: a parameter's default for Ref to a parameter, the first branch
// of Fn::If, and a string for everything else (resource Refs, Fn::Sub,
// Fn::GetAtt, ...).
func placeholders(v any, tmpl map[string]any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch {
				case k == "Ref":
					if d, ok := paramDefault(fmt.Sprint(arg), tmpl); ok {
						return d
					}
					return "placeholder"
				case k == "Fn::If":
					if a, ok := arg.([]any); ok && len(a) == 3 {
						return placeholders(a[1], tmpl)
					}
					return "placeholder"
				case strings.HasPrefix(k, "Fn::"):
					return "placeholder"
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = placeholders(e, tmpl)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = placeholders(e, tmpl)
		}
		return out
	}
	return v
}

// TestTemplateTableMatchesCode: the table's keys, attribute types, index,
// billing and TTL attribute equal infra/dynamodb's TableSpec.
func TestTemplateTableMatchesCode(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	id := tp.one(t, "AWS::DynamoDB::Table")
	p := tp.Resources[id].Properties
	spec := dynamodb.TableSpec("x")

	var wantAttrs, gotAttrs []string
	for _, a := range spec.AttributeDefinitions {
		wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	for _, a := range p["AttributeDefinitions"].([]any) {
		m := a.(map[string]any)
		gotAttrs = append(gotAttrs, fmt.Sprint(m["AttributeName"])+":"+fmt.Sprint(m["AttributeType"]))
	}
	sort.Strings(wantAttrs)
	sort.Strings(gotAttrs)
	if !slices.Equal(gotAttrs, wantAttrs) {
		t.Errorf("AttributeDefinitions %v, want %v", gotAttrs, wantAttrs)
	}

	keySchema := func(v any) []string {
		var out []string
		for _, k := range v.([]any) {
			m := k.(map[string]any)
			out = append(out, fmt.Sprint(m["AttributeName"])+":"+fmt.Sprint(m["KeyType"]))
		}
		return out
	}
	var wantKeys []string
	for _, k := range spec.KeySchema {
		wantKeys = append(wantKeys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	if got := keySchema(p["KeySchema"]); !slices.Equal(got, wantKeys) {
		t.Errorf("KeySchema %v, want %v", got, wantKeys)
	}

	gsis, _ := p["GlobalSecondaryIndexes"].([]any)
	if len(gsis) != len(spec.GlobalSecondaryIndexes) {
		t.Fatalf("%d global secondary indexes, want %d", len(gsis), len(spec.GlobalSecondaryIndexes))
	}
	for i, want := range spec.GlobalSecondaryIndexes {
		got := gsis[i].(map[string]any)
		var wk []string
		for _, k := range want.KeySchema {
			wk = append(wk, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
		proj, _ := got["Projection"].(map[string]any)
		if got["IndexName"] != aws.ToString(want.IndexName) || !slices.Equal(keySchema(got["KeySchema"]), wk) ||
			proj["ProjectionType"] != string(want.Projection.ProjectionType) {
			t.Errorf("index %d: %v, want %s %v %s", i, got, aws.ToString(want.IndexName), wk, want.Projection.ProjectionType)
		}
	}
	if p["BillingMode"] != string(spec.BillingMode) {
		t.Errorf("BillingMode %v, want %s", p["BillingMode"], spec.BillingMode)
	}
	ttl, _ := p["TimeToLiveSpecification"].(map[string]any)
	if ttl["AttributeName"] != dynamodb.TTLAttribute || ttl["Enabled"] != true {
		t.Errorf("TimeToLiveSpecification %v, want %s enabled", ttl, dynamodb.TTLAttribute)
	}
	if _, named := p["TableName"]; named {
		t.Errorf("TableName is set: a fixed name blocks a second stack and replacement updates")
	}
}

// settingNames lists every WSGATE_* variable internal/settings reads, and
// those of SPEC.md's configuration table when SPEC.md is beside the
// repository (../shared/SPEC.md).
func settingNames(t *testing.T) []string {
	t.Helper()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	settings.Register(fs)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		names["WSGATE_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = true
	})
	if spec, err := os.ReadFile(filepath.Join(repoRoot(), "..", "shared", "SPEC.md")); err == nil {
		for _, m := range regexp.MustCompile("(?m)^\\| `(WSGATE_[A-Z_]+)`(?:, `(WSGATE_[A-Z_]+)`)?").FindAllStringSubmatch(string(spec), -1) {
			for _, n := range m[1:] {
				if n != "" {
					if !names[n] {
						t.Errorf("SPEC.md names %s, which internal/settings does not read", n)
					}
					names[n] = true
				}
			}
		}
	} else {
		t.Logf("SPEC.md not found beside the repository: checking internal/settings' list only")
	}
	return sortedKeys(names)
}

// TestTemplateSettingsWired: both functions get every setting that applies
// to a Lambda as an environment variable, and nothing else; events/env.json
// overrides only declared variables (sam local ignores the others).
func TestTemplateSettingsWired(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	all := settingNames(t)
	for _, id := range tp.ofType("AWS::Serverless::Function") {
		vars := tp.envVars(id)
		for _, name := range all {
			_, wired := vars[name]
			if why, skip := notForLambdas[name]; skip {
				if wired {
					t.Errorf("%s: %s is wired but unused by Lambdas (%s)", id, name, why)
				}
				continue
			}
			if !wired {
				t.Errorf("%s: setting %s is not wired as an environment variable", id, name)
			}
		}
		for name := range vars {
			if !slices.Contains(all, name) {
				t.Errorf("%s: environment variable %s is not a wsgate setting", id, name)
			}
		}
	}
	for _, name := range []string{"WSGATE_TABLE", "WSGATE_APIGW_ENDPOINT"} {
		for _, id := range tp.ofType("AWS::Serverless::Function") {
			if !strings.Contains(string(mustJSON(t, tp.envVars(id)[name])), tp.one(t, map[string]string{
				"WSGATE_TABLE": "AWS::DynamoDB::Table", "WSGATE_APIGW_ENDPOINT": "AWS::ApiGatewayV2::Api",
			}[name])) {
				t.Errorf("%s: %s does not name the stack's own resource: %s", id, name, mustJSON(t, tp.envVars(id)[name]))
			}
		}
	}
	if secret := tp.Parameters[paramOf(tp.envVars("WebSocketFunction")["WSGATE_JWT_SECRET"])]; secret["NoEcho"] != true {
		t.Errorf("the JWT secret parameter is not NoEcho: %v", secret)
	}

	b, err := os.ReadFile(filepath.Join(repoRoot(), "events", "env.json"))
	if err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	for fn, vars := range env {
		fns := []string{fn}
		if fn == "Parameters" { // sam local: for every function
			fns = tp.ofType("AWS::Serverless::Function")
		} else if tp.Resources[fn].Type != "AWS::Serverless::Function" {
			t.Errorf("events/env.json: %s is not a function of the template", fn)
			continue
		}
		for _, f := range fns {
			for name := range vars {
				if _, ok := tp.envVars(f)[name]; !ok {
					t.Errorf("events/env.json: %s is not declared for %s in template.yaml, so sam local would ignore it", name, f)
				}
			}
		}
	}
}

// paramOf returns the parameter a {"Ref": P} names.
func paramOf(v any) string {
	if m, ok := v.(map[string]any); ok {
		return fmt.Sprint(m["Ref"])
	}
	return ""
}

// TestTemplateLeastPrivilege: the functions get CRUD on the stack's own
// table and ManageConnections on its own WebSocket API stage, nothing else.
func TestTemplateLeastPrivilege(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	table := tp.one(t, "AWS::DynamoDB::Table")
	api := tp.one(t, "AWS::ApiGatewayV2::Api")
	stage := tp.Resources[tp.one(t, "AWS::ApiGatewayV2::Stage")].Properties["StageName"]
	connections := regexp.MustCompile(`^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{` + api + `\}/\$\{` + paramOf(stage) + `\}/(POST|DELETE)/@connections/\*$`)
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		if ids := tp.ofType(typ); len(ids) > 0 {
			t.Errorf("template declares %s %v: policies belong on the functions, where this test reads them", typ, ids)
		}
	}
	for _, id := range tp.ofType("AWS::Serverless::Function") {
		if _, ok := tp.Resources[id].Properties["Role"]; ok {
			t.Errorf("%s: has a Role instead of Policies", id)
		}
		policies, ok := tp.Resources[id].Properties["Policies"].([]any)
		if !ok {
			t.Errorf("%s: Policies must be a list", id)
			continue
		}
		var crud, manage bool
		for _, p := range policies {
			m, ok := p.(map[string]any)
			if !ok || len(m) != 1 {
				t.Errorf("%s: policy %s is neither a SAM policy template nor a statement list", id, mustJSON(t, p))
				continue
			}
			switch {
			case m["DynamoDBCrudPolicy"] != nil:
				if tn := m["DynamoDBCrudPolicy"].(map[string]any)["TableName"]; paramOf(tn) != table {
					t.Errorf("%s: DynamoDBCrudPolicy on %s, want {Ref: %s}", id, mustJSON(t, tn), table)
				}
				crud = true
			case m["Statement"] != nil:
				for _, s := range m["Statement"].([]any) {
					st := s.(map[string]any)
					res, _ := st["Resource"].(map[string]any)
					sub, _ := res["Fn::Sub"].(string)
					if st["Effect"] != "Allow" || st["Action"] != "execute-api:ManageConnections" || !connections.MatchString(sub) {
						t.Errorf("%s: statement %s, want Allow execute-api:ManageConnections on %s", id, mustJSON(t, st), connections)
					}
					manage = true
				}
			default:
				t.Errorf("%s: unexpected policy %s", id, mustJSON(t, p))
			}
		}
		if !crud || !manage {
			t.Errorf("%s: DynamoDB CRUD %v, ManageConnections %v; both are needed", id, crud, manage)
		}
	}
}

// TestTemplateWiring: the WebSocket API has exactly the three routes, all
// proxied to the WebSocket function, which API Gateway may invoke; the
// stage is deployed after the routes; the admin function sits behind the
// HTTP API with payload 2.0; each function has a log group with retention;
// the outputs give both URLs.
func TestTemplateWiring(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	api := tp.one(t, "AWS::ApiGatewayV2::Api")
	integ := tp.one(t, "AWS::ApiGatewayV2::Integration")
	ip := tp.Resources[integ].Properties
	if ip["IntegrationType"] != "AWS_PROXY" || paramOf(ip["ApiId"]) != api ||
		!strings.Contains(fmt.Sprint(ip["IntegrationUri"]), "${WebSocketFunction.Arn}") {
		t.Errorf("integration %s", mustJSON(t, ip))
	}
	var routeKeys, routeIDs []string
	for _, id := range tp.ofType("AWS::ApiGatewayV2::Route") {
		p := tp.Resources[id].Properties
		routeKeys = append(routeKeys, fmt.Sprint(p["RouteKey"]))
		routeIDs = append(routeIDs, id)
		if paramOf(p["ApiId"]) != api || string(mustJSON(t, p["Target"])) != `{"Fn::Sub":"integrations/${`+integ+`}"}` {
			t.Errorf("route %s: %s", id, mustJSON(t, p))
		}
	}
	sort.Strings(routeKeys)
	if !slices.Equal(routeKeys, []string{"$connect", "$default", "$disconnect"}) {
		t.Errorf("routes %v, want $connect, $default, $disconnect", routeKeys)
	}
	dep := tp.one(t, "AWS::ApiGatewayV2::Deployment")
	var depends []string
	_ = json.Unmarshal(mustJSON(t, tp.Resources[dep].DependsOn), &depends)
	sort.Strings(depends)
	if !slices.Equal(depends, routeIDs) {
		t.Errorf("deployment DependsOn %v, want every route %v", depends, routeIDs)
	}
	if st := tp.Resources[tp.one(t, "AWS::ApiGatewayV2::Stage")].Properties; paramOf(st["DeploymentId"]) != dep || paramOf(st["ApiId"]) != api {
		t.Errorf("stage %s", mustJSON(t, st))
	}
	perm := tp.Resources[tp.one(t, "AWS::Lambda::Permission")].Properties
	if paramOf(perm["FunctionName"]) != "WebSocketFunction" || perm["Principal"] != "apigateway.amazonaws.com" ||
		!strings.Contains(fmt.Sprint(perm["SourceArn"]), "${"+api+"}/") {
		t.Errorf("invoke permission %s", mustJSON(t, perm))
	}

	httpAPI := tp.one(t, "AWS::Serverless::HttpApi")
	events, _ := tp.Resources["AdminFunction"].Properties["Events"].(map[string]any)
	found := false
	for _, e := range events {
		ev := e.(map[string]any)
		p, _ := ev["Properties"].(map[string]any)
		if ev["Type"] == "HttpApi" && paramOf(p["ApiId"]) == httpAPI && p["PayloadFormatVersion"] == "2.0" && p["Path"] == nil {
			found = true
		}
	}
	if !found {
		t.Errorf("AdminFunction has no HttpApi event on %s's $default route with payload 2.0: %s", httpAPI, mustJSON(t, events))
	}

	for _, fn := range tp.ofType("AWS::Serverless::Function") {
		ok := false
		for _, lg := range tp.ofType("AWS::Logs::LogGroup") {
			p := tp.Resources[lg].Properties
			if string(mustJSON(t, p["LogGroupName"])) == `{"Fn::Sub":"/aws/lambda/${`+fn+`}"}` && p["RetentionInDays"] != nil {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s has no log group with a retention", fn)
		}
	}
	out := func(name string) string { return fmt.Sprint(tp.Outputs[name]["Value"]) }
	if v := out("WebSocketURL"); !strings.Contains(v, "wss://${"+api+"}.execute-api.") {
		t.Errorf("WebSocketURL output %s", v)
	}
	if v := out("AdminURL"); !strings.Contains(v, "https://${"+httpAPI+"}.execute-api.") {
		t.Errorf("AdminURL output %s", v)
	}
}

// elfMachine maps the template's Architectures to ELF machines.
var elfMachine = map[string]elf.Machine{"arm64": elf.EM_AARCH64, "x86_64": elf.EM_X86_64}

// TestTemplateFunctionsBuild: each function is a provided.al2023
// `bootstrap` whose CodeUri holds a Makefile with its build-<LogicalId>
// target, and that target, run as `sam build` runs it, builds a static,
// stripped Linux binary for the template's architecture.
func TestTemplateFunctionsBuild(t *testing.T) {
	tp := loadTemplate(t)
	if testing.Short() {
		t.Skip("builds both functions; skipped with -short")
	}
	for _, id := range tp.ofType("AWS::Serverless::Function") {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			if rt := tp.functionProp(id, "Runtime"); rt != "provided.al2023" {
				t.Errorf("Runtime %v, want provided.al2023", rt)
			}
			if h := tp.functionProp(id, "Handler"); h != "bootstrap" {
				t.Errorf("Handler %v, want bootstrap", h)
			}
			archs, _ := tp.functionProp(id, "Architectures").([]any)
			if len(archs) != 1 || elfMachine[fmt.Sprint(archs[0])] == elf.EM_NONE {
				t.Fatalf("Architectures %v, want one of arm64, x86_64", archs)
			}
			if bm := tp.Resources[id].Metadata["BuildMethod"]; bm != "makefile" {
				t.Fatalf("Metadata.BuildMethod %v, want makefile", bm)
			}
			codeURI, _ := tp.functionProp(id, "CodeUri").(string)
			dir := filepath.Join(repoRoot(), codeURI)
			if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil {
				t.Fatalf("CodeUri %q has no Makefile: %v", codeURI, err)
			}
			out := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "build-"+id, "ARTIFACTS_DIR="+out)
			cmd.Dir = dir
			cmd.Env = withoutEnv(os.Environ(), "LAMBDA_ARCH", "GOOS", "GOARCH")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s in %s (what sam build runs; include scripts/lambda.mk from the Makefile): %v\n%s", id, dir, err, b)
			}
			f, err := elf.Open(filepath.Join(out, "bootstrap"))
			if err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
			defer f.Close()
			if f.Machine != elfMachine[fmt.Sprint(archs[0])] {
				t.Errorf("bootstrap is for %v, the template says %v", f.Machine, archs[0])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("bootstrap is dynamically linked (CGO_ENABLED=0 expected)")
				}
			}
			if f.Section(".symtab") != nil {
				t.Errorf("bootstrap is not stripped (-ldflags='-s -w' expected)")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
