// cbspider_flow replays, call for call, what CB-Spider's OpenStack driver (cloud-barista/cb-spider v0.13.0,
// cloud-control-manager/cloud-driver/drivers/openstack/) sends to an OpenStack cloud for one VM's life:
// connect, VPC, security group, key pair, boot-from-volume VM with a public IP, suspend / resume / reboot,
// terminate and delete everything again. It is built with Debian's gophercloud 0.12 in GOPATH mode:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE=$tmp go build -o flow main.go
//
// CB-Spider v0.13 links gophercloud v2.12 (context arguments); every v2 call below is the v0.12 call that
// sends the same request (same URL, body and headers). The one place where v2.12 sends requests v0.12
// does not is client creation: v2.12 resolves an endpoint from the catalog by service type *and aliases*
// and checks its major version (a GET on the unversioned endpoint when the URL carries no version). That
// is translated here by v2EndpointLocator, installed as the provider's EndpointLocator, so every
// openstack.NewXxx call of ConnectCloud finds the endpoint v2.12 would find and sends the same discovery
// requests.
//
// Each step is one CB-Spider API call, and like CB-Spider (CloudDriverHandler_common.go:
// GetCloudConnection -> ConnectCloud for every request) each one opens a fresh connection. Step by step:
//
//	connect             OpenStackDriver.go: ConnectCloud / clientCreator (identity, image, load balancer
//	                    "octavia", block storage volumev3 else volumev2, network "neutron", compute, shared
//	                    file system, database) + getIdentityClient
//	ListImage           resources/ImageHandler.go: ListImage / getRawImageList (+ MyImageHandler.go:
//	                    CheckSnapshot) - how a user finds the image id StartVM needs
//	CreateVPC           resources/VPCHandler.go: CreateVPC (networks list by name, networks.Create),
//	                    CreateRouter (CommonOpenStackFunc.go: GetPublicVPCInfo, router with
//	                    external_gateway_info and distributed=false, retried without), CreateSubnet,
//	                    GetVPC / getRawVPC / setterVPC / GetSubnet, AddInterface
//	GetVPC              resources/VPCHandler.go: GetVPC (+ a router read to check the gateway)
//	CreateSecurity      resources/SecurityHandler.go: CreateSecurity (ListSecurity, Nova os-security-groups
//	                    create, setterSeg: Neutron tags + rules list, equalsRule, convertCBRuleInfosToOpenStackRules,
//	                    Neutron rules create, GetSecurity / getRawSecurity)
//	AddRules            resources/SecurityHandler.go: AddRules
//	GetSecurity         resources/SecurityHandler.go: GetSecurity, ListSecurity
//	CreateKey           resources/KeyPairHandler.go: CreateKey (CheckKeyPairReqInfo, CheckExistKey,
//	                    keypairs.Create without a public key: Nova generates it and returns the private key)
//	StartVM             resources/VMHandler.go: StartVM (servers list by name, GetFlavorByName, getRawVPC,
//	                    subnets get, availableFixedIP / Hosts, getRawSecurity, getOSTypeByImage / getRawImage,
//	                    severCreatePublicImageLinuxOS: createBlockDeviceSet (boot from volume: source image,
//	                    destination volume, size = flavor disk or RootDiskSize, delete_on_termination true),
//	                    linuxServerCreatOptConvertKeyPairWrapping (GetRawKey, cloud-init user data, key_name),
//	                    servers.Create; the ACTIVE wait loop; AssociatePublicIP (floating IP create,
//	                    GetPortByDeviceID, floating IP update); servers get; mappingServerInfo)
//	GetVM               resources/VMHandler.go: GetVM / getRawVM / mappingServerInfo (getAvailabilityZoneFromAPI,
//	                    getRawImage, getAllVolumeByServerAttachedVolume / DiskHandler.go getRawDisk, flavors get,
//	                    GetSecurityByName, GetNetworkByName, attachinterfaces, ports get, GetSubnetByID,
//	                    floating IPs by port, TagHandler.go ListTag with compute microversion 2.52)
//	                    + checks: root volume in Cinder, in-use, attached (os-extended-volumes:volumes_attached)
//	SuspendVM/ResumeVM  resources/VMHandler.go: SuspendVM (os-stop), ResumeVM (os-start), RebootVM (SOFT),
//	/RebootVM           each followed by GetVMStatus polls until the status settles, as a Spider user does
//	TerminateVM         resources/VMHandler.go: TerminateVM (GetVM, vmCleaner: floating IP delete, servers
//	                    delete, list by name until gone) + check: the root volume goes (delete_on_termination)
//	DeleteKey           resources/KeyPairHandler.go: DeleteKey
//	DeleteSecurity      resources/SecurityHandler.go: DeleteSecurity (Nova os-security-groups get + delete)
//	DeleteVPC           resources/VPCHandler.go: DeleteVPC / vpcCleaner (servers list, routers by name,
//	                    DeleteInterface per subnet, leftover router ports, router delete,
//	                    cleanupNetworkPorts, network delete)
//	nothing left        checks only: no servers, volumes, ports, floating IPs, routers, networks of ours,
//	                    security groups other than default, key pairs (Neutron lists filtered by project_id:
//	                    with the admin role real Neutron lists every project's objects)
//
// Checks that are not driver calls are marked "check:" in the code. Configuration comes from the
// environment (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_DOMAIN_NAME, OS_PROJECT_ID, OS_REGION_NAME,
// OS_ZONE, CBSPIDER_IMAGE, CBSPIDER_FLAVOR, CBSPIDER_ROOT_DISK_SIZE, CBSPIDER_NAME_PREFIX) or the
// matching flags. CBSPIDER_FLOW_TRACE=1 prints every HTTP request, =2 with the bodies. Output: one line per step with its
// time and number of HTTP calls, then "cbspider-openstack-flow: N steps passed".
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud"
	"github.com/gophercloud/gophercloud/openstack"
	volumes3 "github.com/gophercloud/gophercloud/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/attachinterfaces"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/bootfromvolume"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/keypairs"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/secgroups"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/startstop"
	computeTags "github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/tags"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/servers"
	tokens3 "github.com/gophercloud/gophercloud/openstack/identity/v3/tokens"
	imgsvc "github.com/gophercloud/gophercloud/openstack/imageservice/v2/images"
	networkTags "github.com/gophercloud/gophercloud/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/extensions/external"
	layer3floatingips "github.com/gophercloud/gophercloud/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/openstack/networking/v2/subnets"
)

// ---------------------------------------------------------------------------------------------------
// configuration, HTTP accounting, steps

type config struct {
	AuthURL, Username, Password, DomainName, ProjectID, Region, Zone string
	Image, Flavor, RootDiskSize, Prefix                              string
	Timeout                                                          time.Duration
}

var (
	cfg       config
	httpCalls int64
	trace     = os.Getenv("CBSPIDER_FLOW_TRACE") == "1" || traceBody
	traceBody = os.Getenv("CBSPIDER_FLOW_TRACE") == "2"
)

// countingTransport counts (and with CBSPIDER_FLOW_TRACE=1 prints) every request; it changes nothing.
type countingTransport struct{ base http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	atomic.AddInt64(&httpCalls, 1)
	var reqBody []byte
	if traceBody && req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := t.base.RoundTrip(req)
	if trace {
		status := "ERR"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		mv := req.Header.Get("X-OpenStack-Nova-API-Version")
		if mv != "" {
			mv = " [nova " + mv + "]"
		}
		fmt.Printf("      > %s %s -> %s%s\n", req.Method, req.URL.String(), status, mv)
		if traceBody && err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if len(reqBody) > 0 {
				fmt.Printf("        request:  %s\n", reqBody)
			}
			fmt.Printf("        response: %s\n", body)
		}
	}
	return resp, err
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type stepFailure struct {
	step string
	err  error
}

var (
	passed    int
	stepIndex int
	flowStart = time.Now()
)

// step runs one flow step; any error ends the program with the step's name.
func step(name string, fn func() (string, error)) {
	stepIndex++
	calls := atomic.LoadInt64(&httpCalls)
	start := time.Now()
	detail, err := fn()
	elapsed := time.Since(start)
	n := atomic.LoadInt64(&httpCalls) - calls
	if err != nil {
		fmt.Printf("step %02d %-26s FAIL %7.3fs %4d calls: %v\n", stepIndex, name, elapsed.Seconds(), n, err)
		fmt.Printf("cbspider-openstack-flow: FAILED at step %q after %d steps passed\n", name, passed)
		fmt.Fprintf(os.Stderr, "FAIL step %s: %v\n", name, err)
		runCleanups()
		os.Exit(1)
	}
	passed++
	fmt.Printf("step %02d %-26s ok   %7.3fs %4d calls  %s\n", stepIndex, name, elapsed.Seconds(), n, detail)
}

// cleanups undo what the flow created when a step fails (best effort, newest first), so a failed run
// against a real cloud leaves nothing behind; a step that deletes a resource drops its cleanup.
type cleanup struct {
	name string
	fn   func(*conn) error
}

var cleanups []cleanup

func addCleanup(name string, fn func(*conn) error) { cleanups = append(cleanups, cleanup{name, fn}) }

func dropCleanup(name string) {
	for i, c := range cleanups {
		if c.name == name {
			cleanups = append(cleanups[:i], cleanups[i+1:]...)
			return
		}
	}
}

func runCleanups() {
	if len(cleanups) == 0 || os.Getenv("CBSPIDER_FLOW_CLEANUP") == "0" {
		return
	}
	c, err := connectCloud()
	if err != nil {
		fmt.Printf("cleanup: cannot connect: %v\n", err)
		return
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		if err := cleanups[i].fn(c); err != nil {
			fmt.Printf("cleanup %s: %v\n", cleanups[i].name, err)
		} else {
			fmt.Printf("cleanup %s: done\n", cleanups[i].name)
		}
	}
}

// waitFor polls fn every interval until it reports done, an error, or the flow timeout.
func waitFor(what string, interval time.Duration, fn func() (bool, error)) error {
	deadline := time.Now().Add(cfg.Timeout)
	for {
		done, err := fn()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", cfg.Timeout, what)
		}
		time.Sleep(interval)
	}
}

func newName(kind string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%s-%s", cfg.Prefix, kind, hex.EncodeToString(b))
}

// ---------------------------------------------------------------------------------------------------
// OpenStackDriver.go: ConnectCloud / clientCreator / getIdentityClient

// conn mirrors connect/OpenStack_CloudConnection.go: OpenStackCloudConnection.
type conn struct {
	IdentityClient         *gophercloud.ServiceClient
	ComputeClient          *gophercloud.ServiceClient
	ImageClient            *gophercloud.ServiceClient
	NetworkClient          *gophercloud.ServiceClient
	Volume2Client          *gophercloud.ServiceClient
	Volume3Client          *gophercloud.ServiceClient
	NLBClient              *gophercloud.ServiceClient
	SharedFileSystemClient *gophercloud.ServiceClient
	DBClient               *gophercloud.ServiceClient
	warnings               []string
}

// VolumeClient is what CreateVMHandler / CreateDiskHandler hand the handlers: v3, else v2.
func (c *conn) VolumeClient() *gophercloud.ServiceClient {
	if c.Volume3Client != nil {
		return c.Volume3Client
	}
	return c.Volume2Client
}

func connectCloud() (*conn, error) {
	authOpts := gophercloud.AuthOptions{
		IdentityEndpoint: cfg.AuthURL,
		Username:         cfg.Username,
		Password:         cfg.Password,
		DomainName:       cfg.DomainName,
		TenantID:         cfg.ProjectID,
	}
	tlsConfig := &tls.Config{InsecureSkipVerify: true}
	httpClient := &http.Client{Transport: countingTransport{&http.Transport{TLSClientConfig: tlsConfig}}}

	provider, err := openstack.NewClient(authOpts.IdentityEndpoint)
	if err != nil {
		return nil, err
	}
	provider.HTTPClient = *httpClient
	if err := openstack.Authenticate(provider, authOpts); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if err := installV2EndpointLocator(provider); err != nil {
		return nil, err
	}

	region := cfg.Region
	identityClient, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		return nil, fmt.Errorf("identity client: %w", err)
	}
	c := &conn{IdentityClient: identityClient}

	c.ImageClient, err = openstack.NewImageServiceV2(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		return nil, fmt.Errorf("image client: %w", err)
	}

	c.NLBClient, err = openstack.NewLoadBalancerV2(provider, gophercloud.EndpointOpts{Name: "octavia", Region: region})
	if err != nil {
		c.warnings = append(c.warnings, fmt.Sprintf("NLB(Octavia) client unavailable: %v", err))
		c.NLBClient = nil
	}

	c.Volume3Client, err = openstack.NewBlockStorageV3(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		c.Volume3Client = nil
		c.Volume2Client, err = openstack.NewBlockStorageV2(provider, gophercloud.EndpointOpts{Region: region})
		if err != nil {
			return nil, fmt.Errorf("failed to initialize both volume v3 and v2 clients: %v", err)
		}
		c.Volume2Client.Type = "volumev2"
	} else {
		c.Volume3Client.Type = "volumev3"
	}

	c.NetworkClient, err = openstack.NewNetworkV2(provider, gophercloud.EndpointOpts{Name: "neutron", Region: region})
	if err != nil {
		return nil, fmt.Errorf("network client: %w", err)
	}

	c.ComputeClient, err = openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		return nil, fmt.Errorf("compute client: %w", err)
	}

	c.SharedFileSystemClient, err = openstack.NewSharedFileSystemV2(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		c.warnings = append(c.warnings, fmt.Sprintf("SharedFileSystem(Manila) client unavailable: %v", err))
		c.SharedFileSystemClient = nil
	}

	c.DBClient, err = openstack.NewDBV1(provider, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		c.warnings = append(c.warnings, fmt.Sprintf("Trove DB client unavailable: %v", err))
	}
	return c, nil
}

// ---- gophercloud v2.12 endpoint location, on top of v0.12's catalog (endpoint_search.go: ApplyDefaults,
// ServiceTypeAliases; openstack/endpoint.go: V3Endpoint, endpointSupportsVersion; openstack/utils:
// BaseVersionedEndpoint, GetServiceVersions(discoverVersions=false), ParseVersion, ParseStatus).

var v2ServiceTypeAliases = map[string][]string{
	"block-storage":      {"block-store", "volume", "volumev2", "volumev3"},
	"compute":            {},
	"database":           {},
	"identity":           {},
	"image":              {},
	"load-balancer":      {},
	"networking":         {},
	"shared-file-system": {"sharev2", "share"},
}

// v0.12 client type -> (v2.12 client type, required major version) as v2.12's NewXxx pass them.
var v2ClientTypes = map[string]struct {
	typ     string
	version int
}{
	"identity":      {"identity", 0}, // NewIdentityV3 does not pass a version
	"compute":       {"compute", 2},
	"network":       {"network", 2},
	"image":         {"image", 2},
	"load-balancer": {"load-balancer", 2},
	"volumev3":      {"block-storage", 3},
	"volumev2":      {"block-storage", 2},
	"sharev2":       {"shared-file-system", 2},
	"database":      {"database", 1},
}

func installV2EndpointLocator(provider *gophercloud.ProviderClient) error {
	res, ok := provider.GetAuthResult().(tokens3.CreateResult)
	if !ok {
		return errors.New("no Keystone v3 auth result to read the catalog from")
	}
	catalog, err := res.ExtractServiceCatalog()
	if err != nil {
		return err
	}
	provider.EndpointLocator = func(eo gophercloud.EndpointOpts) (string, error) {
		return v2EndpointLocator(provider, catalog, eo)
	}
	return nil
}

func v2EndpointLocator(provider *gophercloud.ProviderClient, catalog *tokens3.ServiceCatalog, eo gophercloud.EndpointOpts) (string, error) {
	ct, ok := v2ClientTypes[eo.Type]
	if !ok {
		return "", fmt.Errorf("no v2 mapping for client type %q", eo.Type)
	}
	types := []string{ct.typ}
	if aliases, ok := v2ServiceTypeAliases[ct.typ]; ok {
		types = append(types, aliases...)
	} else {
		for t, aliases := range v2ServiceTypeAliases {
			for _, a := range aliases {
				if a == ct.typ {
					types = append([]string{t}, aliases...)
				}
			}
		}
	}
	avail := eo.Availability
	if avail == "" {
		avail = gophercloud.AvailabilityPublic
	}
	for _, entry := range catalog.Entries {
		if !contains(types, entry.Type) || (eo.Name != "" && entry.Name != eo.Name) {
			continue
		}
		for _, ep := range entry.Endpoints {
			if string(avail) != ep.Interface {
				continue
			}
			if eo.Region != "" && ep.Region != eo.Region && ep.RegionID != eo.Region {
				continue
			}
			endpointURL := gophercloud.NormalizeURL(ep.URL)
			okVersion, err := endpointSupportsVersion(provider, entry.Type, endpointURL, ct.version)
			if err != nil {
				return "", err
			}
			if !okVersion {
				continue
			}
			return endpointURL, nil
		}
	}
	return "", &gophercloud.ErrEndpointNotFound{}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var versionedServiceTypeAlias = regexp.MustCompile(`^.*v(\d)$`)

func endpointSupportsVersion(provider *gophercloud.ProviderClient, serviceType, endpointURL string, expected int) (bool, error) {
	if expected == 0 || serviceType == "object-store" {
		return true, nil
	}
	if m := versionedServiceTypeAlias.FindStringSubmatch(serviceType); m != nil {
		if implied, _ := strconv.Atoi(m[1]); implied != 0 && implied != expected {
			return false, nil
		}
	}
	base, err := baseVersionedEndpoint(endpointURL)
	if err != nil {
		return false, err
	}
	majors, err := serviceVersions(provider, base)
	if err != nil {
		return false, err
	}
	for _, m := range majors {
		if m == expected {
			return true, nil
		}
	}
	return false, nil
}

func baseVersionedEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	u.RawQuery, u.Fragment = "", ""
	if v := regexp.MustCompile("v[0-9.]+/?").FindString(u.Path); v != "" {
		u.Path = u.Path[:strings.Index(u.Path, v)+len(v)]
	}
	return u.String(), nil
}

var versionRe = regexp.MustCompile(`^v?([0-9]+)(\.([0-9]+))?$`)

func parseMajor(v string) (int, error) {
	m := versionRe.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("invalid format: %q", v)
	}
	return strconv.Atoi(m[1])
}

// serviceVersions: GetServiceVersions(ctx, client, url, false) reduced to the major versions.
func serviceVersions(provider *gophercloud.ProviderClient, endpointURL string) ([]int, error) {
	u, err := url.Parse(endpointURL)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimRight(u.Path, "/"), "/")
	if major, err := parseMajor(parts[len(parts)-1]); err == nil {
		return []int{major}, nil // the URL names its version: no discovery request
	}
	var raw map[string]json.RawMessage
	_, err = provider.Request("GET", endpointURL, &gophercloud.RequestOpts{JSONResponse: &raw, OkCodes: []int{200, 300}})
	if err != nil {
		return nil, fmt.Errorf("version discovery GET %s: %w", endpointURL, err)
	}
	type version struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	var versions []version
	if v, ok := raw["version"]; ok && string(v) != "null" {
		var one version
		if err := json.Unmarshal(v, &one); err == nil {
			versions = []version{one}
		}
	} else if v, ok := raw["versions"]; ok {
		if err := json.Unmarshal(v, &versions); err != nil {
			var values struct {
				Values []version `json:"values"`
			}
			if err := json.Unmarshal(v, &values); err != nil {
				return nil, fmt.Errorf("failed to unmarshal versions document of %s", endpointURL)
			}
			versions = values.Values
		}
	} else if id, ok := raw["id"]; ok {
		var s string
		_ = json.Unmarshal(id, &s)
		versions = []version{{ID: s}}
	} else {
		return nil, fmt.Errorf("failed to unmarshal versions document of %s", endpointURL)
	}
	var majors []int
	for _, v := range versions {
		major, err := parseMajor(v.ID)
		if err != nil {
			return nil, err
		}
		switch strings.ToUpper(v.Status) {
		case "CURRENT", "STABLE", "SUPPORTED", "DEPRECATED", "":
		default:
			return nil, fmt.Errorf("invalid status: %q", v.Status)
		}
		majors = append(majors, major)
	}
	return majors, nil
}

// ---------------------------------------------------------------------------------------------------
// CommonOpenStackFunc.go

const (
	DNSNameservers   = "8.8.8.8"
	ResourceNotFound = "Resource not found"
	VolumeV2         = "volumev2"
	VolumeV3         = "volumev3"
	SSHDefaultUser   = "cb-user"
)

type NetworkWithExt struct {
	networks.Network
	external.NetworkExternalExt
}

func GetPublicVPCInfo(client *gophercloud.ServiceClient, typeName string) (string, error) {
	iTrue := true
	listOpts := external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &iTrue}
	page, err := networks.List(client, listOpts).AllPages()
	if err != nil {
		return "", err
	}
	var extVpcList []NetworkWithExt
	if err := networks.ExtractNetworksInto(page, &extVpcList); err != nil {
		return "", err
	}
	if len(extVpcList) == 0 {
		return "", errors.New("Failed to get vpc list, external vpc not exist")
	}
	if typeName == "ID" {
		return extVpcList[0].ID, nil
	} else if typeName == "NAME" {
		return extVpcList[0].Name, nil
	}
	return "", nil
}

func GetFlavorByName(client *gophercloud.ServiceClient, flavorName string) (flavors.Flavor, error) {
	pages, err := flavors.ListDetail(client, nil).AllPages()
	if err != nil {
		return flavors.Flavor{}, err
	}
	flavorList, _ := flavors.ExtractFlavors(pages)
	for _, flavor := range flavorList {
		if flavor.Name == flavorName {
			return flavor, nil
		}
	}
	return flavors.Flavor{}, fmt.Errorf("could not found Flavor with name %s ", flavorName)
}

func GetSecurityByName(computeClient *gophercloud.ServiceClient, securityName string) (*secgroups.SecurityGroup, error) {
	pages, err := secgroups.List(computeClient).AllPages()
	if err != nil {
		return nil, err
	}
	list, err := secgroups.ExtractSecurityGroups(pages)
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		if strings.EqualFold(s.Name, securityName) {
			s := s
			return &s, nil
		}
	}
	return nil, fmt.Errorf("could not found SecurityGroups with name %s ", securityName)
}

func GetNetworkByName(networkClient *gophercloud.ServiceClient, networkName string) (*networks.Network, error) {
	pages, err := networks.List(networkClient, networks.ListOpts{Name: networkName}).AllPages()
	if err != nil {
		return nil, err
	}
	netList, err := networks.ExtractNetworks(pages)
	if err != nil {
		return nil, err
	}
	for _, s := range netList {
		if strings.EqualFold(s.Name, networkName) {
			s := s
			return &s, nil
		}
	}
	return nil, fmt.Errorf("could not found network with name %s ", networkName)
}

func GetSubnetByID(networkClient *gophercloud.ServiceClient, subnetID string) (*subnets.Subnet, error) {
	return subnets.Get(networkClient, subnetID).Extract()
}

func GetPortByDeviceID(networkClient *gophercloud.ServiceClient, deviceID string) (*ports.Port, error) {
	pages, err := ports.List(networkClient, ports.ListOpts{}).AllPages()
	if err != nil {
		return nil, err
	}
	portList, err := ports.ExtractPorts(pages)
	if err != nil {
		return nil, err
	}
	for _, s := range portList {
		if strings.EqualFold(s.DeviceID, deviceID) {
			s := s
			return &s, nil
		}
	}
	return nil, fmt.Errorf("could not found port of device %s ", deviceID)
}

// ---------------------------------------------------------------------------------------------------
// ImageHandler.go: ListImage / getRawImageList / getRawImage; MyImageHandler.go: CheckSnapshot

type imageMetaData struct {
	ImageType             string          `json:"image_type"`
	BlockDeviceMappingRaw json.RawMessage `json:"block_device_mapping"`
}

func checkSnapshot(image imgsvc.Image) (bool, error) {
	if image.Properties == nil {
		return false, nil
	}
	b, err := json.Marshal(image.Properties)
	if err != nil {
		return false, err
	}
	var meta imageMetaData
	if err := json.Unmarshal(b, &meta); err != nil {
		return false, err
	}
	if meta.ImageType == "snapshot" {
		return true, nil
	}
	if len(meta.BlockDeviceMappingRaw) > 0 {
		var bdm []struct {
			SourceType string `json:"source_type"`
		}
		if err := json.Unmarshal(meta.BlockDeviceMappingRaw, &bdm); err != nil {
			var s string
			if json.Unmarshal(meta.BlockDeviceMappingRaw, &s) == nil && s != "" {
				_ = json.Unmarshal([]byte(s), &bdm)
			}
		}
		for _, m := range bdm {
			if m.SourceType == "snapshot" {
				return true, nil
			}
		}
	}
	return false, nil
}

func listImage(c *conn) ([]imgsvc.Image, error) {
	pager, err := imgsvc.List(c.ImageClient, imgsvc.ListOpts{}).AllPages()
	if err != nil {
		return nil, err
	}
	list, err := imgsvc.ExtractImages(pager)
	if err != nil {
		return nil, err
	}
	var out []imgsvc.Image
	for _, image := range list {
		snap, err := checkSnapshot(image)
		if err != nil {
			return nil, err
		}
		if !snap {
			out = append(out, image)
		}
	}
	return out, nil
}

func getRawImage(imageID string, client *gophercloud.ServiceClient) (imgsvc.Image, error) {
	image, err := imgsvc.Get(client, imageID).Extract()
	if err != nil {
		return imgsvc.Image{}, err
	}
	return *image, nil
}

// ---------------------------------------------------------------------------------------------------
// VPCHandler.go

type subnetReq struct{ Name, CIDR string }

type vpcInfo struct {
	ID, Name string
	Subnets  []subnets.Subnet
}

func createVPC(c *conn, name string, subnetReqs []subnetReq) (_ vpcInfo, _ string, createErr error) {
	// Check VPC Exists
	page, err := networks.List(c.NetworkClient, networks.ListOpts{Name: name}).AllPages()
	if err != nil {
		return vpcInfo{}, "", err
	}
	vpcList, err := networks.ExtractNetworks(page)
	if err != nil {
		return vpcInfo{}, "", err
	}
	if len(vpcList) != 0 {
		return vpcInfo{}, "", fmt.Errorf("The VPC name %s already exists", name)
	}
	vpc, err := networks.Create(c.NetworkClient, networks.CreateOpts{Name: name}).Extract()
	if err != nil {
		return vpcInfo{}, "", fmt.Errorf("network create: %w", err)
	}
	defer func() { // the driver's rollback
		if createErr != nil {
			if _, cleanErr := vpcCleaner(c, vpc.ID); cleanErr != nil {
				createErr = fmt.Errorf("%v Failed to rollback deleting err = %v", createErr, cleanErr)
			}
		}
	}()
	routerID, err := createRouter(c, name)
	if err != nil {
		return vpcInfo{}, "", fmt.Errorf("router create: %w", err)
	}
	for _, s := range subnetReqs {
		if _, err := createSubnet(c, vpc.ID, s); err != nil {
			return vpcInfo{}, "", fmt.Errorf("subnet create: %w", err)
		}
	}
	info, err := getVPC(c, vpc.ID)
	if err != nil {
		return vpcInfo{}, "", err
	}
	for _, s := range info.Subnets {
		if err := addInterface(c, s.ID, routerID); err != nil {
			return vpcInfo{}, "", fmt.Errorf("router add interface: %w", err)
		}
	}
	return info, routerID, nil
}

func createRouter(c *conn, vpcName string) (string, error) {
	externVPCID, _ := GetPublicVPCInfo(c.NetworkClient, "ID")
	adminStateUp := true
	distributed := false
	createOpts := routers.CreateOpts{
		Name:         vpcName,
		AdminStateUp: &adminStateUp,
		Distributed:  &distributed,
		GatewayInfo:  &routers.GatewayInfo{NetworkID: externVPCID},
	}
	router, err := routers.Create(c.NetworkClient, createOpts).Extract()
	if err != nil {
		// "If the OpenStack environment does not support the 'distributed' attribute, retry without it."
		createOpts.Distributed = nil
		router, err = routers.Create(c.NetworkClient, createOpts).Extract()
		if err != nil {
			return "", err
		}
	}
	return router.ID, nil
}

func createSubnet(c *conn, vpcID string, req subnetReq) (*subnets.Subnet, error) {
	return subnets.Create(c.NetworkClient, subnets.CreateOpts{
		NetworkID:      vpcID,
		Name:           req.Name,
		CIDR:           req.CIDR,
		IPVersion:      gophercloud.IPv4,
		DNSNameservers: []string{DNSNameservers},
	}).Extract()
}

func getRawVPC(c *conn, vpcID string) (*NetworkWithExt, error) {
	var vpc NetworkWithExt
	if err := networks.Get(c.NetworkClient, vpcID).ExtractInto(&vpc); err != nil {
		return nil, err
	}
	return &vpc, nil
}

// getVPC: GetVPC -> getRawVPC -> setterVPC -> GetSubnet per subnet id.
func getVPC(c *conn, vpcID string) (vpcInfo, error) {
	vpc, err := getRawVPC(c, vpcID)
	if err != nil {
		return vpcInfo{}, fmt.Errorf("Failed to Get VPC err = %w", err)
	}
	info := vpcInfo{ID: vpc.ID, Name: vpc.Name}
	for _, id := range vpc.Subnets {
		s, err := subnets.Get(c.NetworkClient, id).Extract()
		if err != nil {
			continue // GetSubnet logs and returns an empty SubnetInfo
		}
		info.Subnets = append(info.Subnets, *s)
	}
	return info, nil
}

func addInterface(c *conn, subnetID, routerID string) error {
	_, err := routers.AddInterface(c.NetworkClient, routerID, routers.AddInterfaceOpts{SubnetID: subnetID}).Extract()
	return err
}

func deleteInterface(c *conn, subnetID, routerID string) error {
	_, err := routers.RemoveInterface(c.NetworkClient, routerID, routers.RemoveInterfaceOpts{SubnetID: subnetID}).Extract()
	return err
}

func cleanupNetworkPorts(c *conn, networkID string) ([]string, error) {
	pages, err := ports.List(c.NetworkClient, ports.ListOpts{NetworkID: networkID}).AllPages()
	if err != nil {
		return nil, err
	}
	portList, err := ports.ExtractPorts(pages)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, p := range portList {
		if p.DeviceOwner == "compute:nova" || p.DeviceOwner == "compute:None" {
			continue
		}
		if err := ports.Delete(c.NetworkClient, p.ID).ExtractErr(); err != nil {
			warnings = append(warnings, fmt.Sprintf("delete port %s (device_owner=%s): %v", p.ID, p.DeviceOwner, err))
		}
	}
	return warnings, nil
}

// vpcCleaner is DeleteVPC's body; it returns the warnings the driver would only log.
func vpcCleaner(c *conn, vpcID string) ([]string, error) {
	vpc, err := getVPC(c, vpcID)
	if err != nil {
		return nil, err
	}
	pager, err := servers.List(c.ComputeClient, nil).AllPages()
	if err != nil {
		return nil, err
	}
	serverList, err := servers.ExtractServers(pager)
	if err != nil {
		return nil, err
	}
	for _, server := range serverList {
		for k := range server.Addresses {
			if k == vpc.Name {
				return nil, errors.New("vm exists on this VPC.")
			}
		}
	}
	page, err := routers.List(c.NetworkClient, routers.ListOpts{Name: vpc.Name}).AllPages()
	if err != nil {
		return nil, err
	}
	routerList, err := routers.ExtractRouters(page)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, router := range routerList {
		for _, s := range vpc.Subnets {
			if err := deleteInterface(c, s.ID, router.ID); err != nil {
				warnings = append(warnings, fmt.Sprintf("remove interface subnet %s: %v", s.ID, err))
			}
		}
		portPages, portErr := ports.List(c.NetworkClient, ports.ListOpts{DeviceID: router.ID}).AllPages()
		if portErr == nil {
			portList, portErr := ports.ExtractPorts(portPages)
			if portErr == nil {
				for _, p := range portList {
					_, _ = routers.RemoveInterface(c.NetworkClient, router.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract()
				}
			}
		}
		if err := routers.Delete(c.NetworkClient, router.ID).ExtractErr(); err != nil {
			warnings = append(warnings, fmt.Sprintf("router delete %s: %v", router.ID, err)) // only logged
		}
	}
	w, err := cleanupNetworkPorts(c, vpc.ID)
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("cleanup ports: %v", err))
	}
	warnings = append(warnings, w...)
	if err := networks.Delete(c.NetworkClient, vpc.ID).ExtractErr(); err != nil {
		return warnings, err
	}
	return warnings, nil
}

// ---------------------------------------------------------------------------------------------------
// SecurityHandler.go

const (
	Inbound  = "inbound"
	Outbound = "outbound"
	ICMP     = "icmp"
)

// SecurityRuleInfo is irs.SecurityRuleInfo (same fields, same order: equalsRule compares %#v).
type SecurityRuleInfo struct {
	Direction  string
	IPProtocol string
	FromPort   string
	ToPort     string
	CIDR       string
}

type securityInfo struct {
	ID, Name string
	Tags     []string
	Rules    []SecurityRuleInfo
}

// setterSeg: Neutron tags of the group, then its rules (errors on tags are only logged).
func setterSeg(c *conn, sg secgroups.SecurityGroup) (*securityInfo, error) {
	info := &securityInfo{ID: sg.ID, Name: sg.Name}
	tags, err := networkTags.List(c.NetworkClient, "security-groups", sg.ID).Extract()
	if err == nil {
		info.Tags = tags
	}
	pager, err := rules.List(c.NetworkClient, rules.ListOpts{SecGroupID: sg.ID}).AllPages()
	if err != nil {
		return nil, err // the driver returns a nil SecurityInfo here
	}
	list, err := rules.ExtractRules(pager)
	if err != nil {
		return nil, err
	}
	for _, r := range list {
		r := r
		info.Rules = append(info.Rules, convertOpenStackRuleToCBRuleInfo(&r))
	}
	return info, nil
}

func listSecurity(c *conn) ([]*securityInfo, error) {
	pager, err := secgroups.List(c.ComputeClient).AllPages()
	if err != nil {
		return nil, fmt.Errorf("Failed to List Security. err = %w", err)
	}
	list, err := secgroups.ExtractSecurityGroups(pager)
	if err != nil {
		return nil, err
	}
	out := make([]*securityInfo, len(list))
	for i, v := range list {
		out[i], err = setterSeg(c, v)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func getRawSecurity(c *conn, id string) (*secgroups.SecurityGroup, error) {
	return secgroups.Get(c.ComputeClient, id).Extract()
}

func getSecurity(c *conn, id string) (*securityInfo, error) {
	sg, err := getRawSecurity(c, id)
	if err != nil {
		return nil, fmt.Errorf("Failed to Get Security. err = %w", err)
	}
	return setterSeg(c, *sg)
}

func createSecurity(c *conn, name string, reqRules []SecurityRuleInfo) (*securityInfo, error) {
	existing, err := listSecurity(c)
	if err != nil {
		return nil, err
	}
	for _, sg := range existing {
		if sg.Name == name {
			return nil, fmt.Errorf("%s already exist", name)
		}
	}
	group, err := secgroups.Create(c.ComputeClient, secgroups.CreateOpts{Name: name, Description: name}).Extract()
	if err != nil {
		return nil, fmt.Errorf("os-security-groups create: %w", err)
	}
	base, err := setterSeg(c, *group)
	if err != nil {
		return nil, err
	}
	var updateRules []SecurityRuleInfo
	for _, newRule := range reqRules {
		chk := true
		for _, baseRule := range base.Rules {
			if equalsRule(newRule, baseRule) {
				chk = false
				break
			}
		}
		if chk {
			updateRules = append(updateRules, newRule)
		}
	}
	opts, err := convertCBRuleInfosToOpenStackRules(group.ID, updateRules)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		if _, err := rules.Create(c.NetworkClient, o).Extract(); err != nil {
			secgroups.Delete(c.ComputeClient, group.ID) // the driver's deferred rollback
			return nil, fmt.Errorf("security group rule create: %w", err)
		}
	}
	return getSecurity(c, group.ID)
}

func addRules(c *conn, id string, newRules []SecurityRuleInfo) (*securityInfo, error) {
	sg, err := getRawSecurity(c, id)
	if err != nil {
		return nil, err
	}
	info, err := setterSeg(c, *sg)
	if err != nil {
		return nil, err
	}
	for _, newRule := range newRules {
		for _, baseRule := range info.Rules {
			if equalsRule(newRule, baseRule) {
				return nil, fmt.Errorf("already Exist Rule : %+v", newRule)
			}
		}
	}
	opts, err := convertCBRuleInfosToOpenStackRules(sg.ID, newRules)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		if _, err := rules.Create(c.NetworkClient, o).Extract(); err != nil {
			return nil, err
		}
	}
	updated, err := getRawSecurity(c, id)
	if err != nil {
		return nil, err
	}
	return setterSeg(c, *updated)
}

func deleteSecurity(c *conn, id string) error {
	sg, err := getRawSecurity(c, id)
	if err != nil {
		return fmt.Errorf("Failed to Delete Security. err = %w", err)
	}
	if r := secgroups.Delete(c.ComputeClient, sg.ID); r.Err != nil {
		return fmt.Errorf("Failed to Delete Security. err = %w", r.Err)
	}
	return nil
}

func convertRuleProtocolOPToCB(protocol string) string {
	if protocol == "" {
		return "all"
	}
	return strings.ToLower(protocol)
}

func convertRuleProtocolCBToOP(protocol string) (rules.RuleProtocol, error) {
	switch strings.ToUpper(protocol) {
	case "ALL":
		return "", nil
	case "ICMP", "TCP", "UDP":
		return rules.RuleProtocol(strings.ToLower(protocol)), nil
	}
	return "", errors.New("invalid Rule Protocol")
}

func convertRuleDirectionCBToOP(direction string) (rules.RuleDirection, error) {
	if strings.EqualFold(direction, Inbound) {
		return rules.DirIngress, nil
	}
	if strings.EqualFold(direction, Outbound) {
		return rules.DirEgress, nil
	}
	return "", errors.New("invalid Rule Direction")
}

func convertRulePortRangeOPToCB(min, max int, protocol string) (string, string) {
	if strings.ToLower(protocol) == ICMP || protocol == "" {
		return "-1", "-1"
	}
	if min == 0 && max == 0 {
		return "1", "65535"
	}
	return strconv.Itoa(min), strconv.Itoa(max)
}

func convertRulePortRangeCBToOP(from, to string) (int, int, error) {
	fromInt, err1 := strconv.Atoi(from)
	toInt, err2 := strconv.Atoi(to)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("invalid Rule PortRange")
	}
	if fromInt == -1 || toInt == -1 {
		return 1, 65535, nil
	}
	if fromInt > 65535 || fromInt < -1 || toInt > 65535 || toInt < -1 {
		return 0, 0, errors.New("invalid Rule PortRange")
	}
	return fromInt, toInt, nil
}

func equalsRule(pre, post SecurityRuleInfo) bool {
	if pre.ToPort == "-1" || pre.FromPort == "-1" {
		pre.FromPort, pre.ToPort = "1", "65535"
	}
	if post.ToPort == "-1" || post.FromPort == "-1" {
		post.FromPort, post.ToPort = "1", "65535"
	}
	return strings.ToLower(fmt.Sprintf("%#v", pre)) == strings.ToLower(fmt.Sprintf("%#v", post))
}

func checkIPAddressType(cidr string) (rules.RuleEtherType, error) {
	parts := strings.Split(cidr, "/")
	if len(parts) != 2 || net.ParseIP(parts[0]) == nil {
		return "", fmt.Errorf("Invalid CIDR Address: %s", cidr)
	}
	for i := 0; i < len(parts[0]); i++ {
		switch parts[0][i] {
		case '.':
			return rules.EtherType4, nil
		case ':':
			return rules.EtherType6, nil
		}
	}
	return "", fmt.Errorf("Invalid CIDR Address: %s", cidr)
}

func convertCBRuleInfosToOpenStackRules(sgID string, sgRules []SecurityRuleInfo) ([]rules.CreateOpts, error) {
	out := make([]rules.CreateOpts, len(sgRules))
	for i, rule := range sgRules {
		direction, err := convertRuleDirectionCBToOP(rule.Direction)
		if err != nil {
			return nil, err
		}
		protocol, err := convertRuleProtocolCBToOP(rule.IPProtocol)
		if err != nil {
			return nil, err
		}
		etherType, err := checkIPAddressType(rule.CIDR)
		if err != nil {
			return nil, err
		}
		if strings.ToLower(rule.IPProtocol) == ICMP {
			out[i] = rules.CreateOpts{Direction: direction, EtherType: etherType, SecGroupID: sgID,
				Protocol: protocol, RemoteIPPrefix: rule.CIDR}
		} else {
			min, max, err := convertRulePortRangeCBToOP(rule.FromPort, rule.ToPort)
			if err != nil {
				return nil, err
			}
			out[i] = rules.CreateOpts{Direction: direction, EtherType: etherType, SecGroupID: sgID,
				PortRangeMin: min, PortRangeMax: max, Protocol: protocol, RemoteIPPrefix: rule.CIDR}
		}
	}
	return out, nil
}

func convertOpenStackRuleToCBRuleInfo(r *rules.SecGroupRule) SecurityRuleInfo {
	direction := Outbound
	if strings.EqualFold(r.Direction, string(rules.DirIngress)) {
		direction = Inbound
	}
	cidr := r.RemoteIPPrefix
	if cidr == "" {
		cidr = "0.0.0.0/0"
		if rules.RuleEtherType(r.EtherType) == rules.EtherType6 {
			cidr = "::/0"
		}
	}
	info := SecurityRuleInfo{Direction: direction, IPProtocol: convertRuleProtocolOPToCB(r.Protocol), CIDR: cidr}
	if strings.ToLower(r.Protocol) == ICMP {
		info.FromPort, info.ToPort = "-1", "-1"
	} else {
		info.FromPort, info.ToPort = convertRulePortRangeOPToCB(r.PortRangeMin, r.PortRangeMax, r.Protocol)
	}
	return info
}

// ---------------------------------------------------------------------------------------------------
// KeyPairHandler.go

func checkExistKey(c *conn, name string) (bool, error) {
	pager, err := keypairs.List(c.ComputeClient).AllPages()
	if err != nil {
		return false, err
	}
	list, err := keypairs.ExtractKeyPairs(pager)
	if err != nil {
		return false, err
	}
	for _, k := range list {
		if k.Name == name {
			return true, nil
		}
	}
	return false, nil
}

func createKey(c *conn, name string) (*keypairs.KeyPair, error) {
	if name == "" {
		return nil, errors.New("invalid KeyPairReqInfo IID")
	}
	exist, err := checkExistKey(c, name)
	if err != nil {
		return nil, err
	}
	if exist {
		return nil, fmt.Errorf("The Key name %s already exists", name)
	}
	return keypairs.Create(c.ComputeClient, keypairs.CreateOpts{Name: name, PublicKey: ""}).Extract()
}

func getRawKey(c *conn, name string) (*keypairs.KeyPair, error) {
	return keypairs.Get(c.ComputeClient, name).Extract()
}

func deleteKey(c *conn, name string) error {
	exist, err := checkExistKey(c, name)
	if err != nil {
		return err
	}
	if !exist {
		return fmt.Errorf("The Key name %s not found", name)
	}
	return keypairs.Delete(c.ComputeClient, name).ExtractErr()
}

// ---------------------------------------------------------------------------------------------------
// VMHandler.go

// cloudInit is cloud-driver-libs/.cloud-init-openstack/cloud-init of cb-spider v0.13.0, which
// linuxServerCreatOptConvertKeyPairWrapping reads from $CBSPIDER_ROOT.
const cloudInit = `#cloud-config
users:
  - name: {{username}}
    ssh-authorized-keys:
      - {{public_key}}
    sudo: ['ALL=(ALL) NOPASSWD:ALL']
    groups: sudo
    shell: /bin/bash
runcmd:
  - sed -i -e '$aAllowUsers {{username}}' /etc/ssh/sshd_config
  - restart ssh
`

type vmReq struct {
	Name, ImageID, FlavorName, VPCID, SubnetID, RootDiskSize, KeyName string
	SecurityGroupIDs                                                  []string
}

type vmInfo struct {
	ID, Name, Status, Zone, PublicIP, PrivateIP, KeyName, VMSpecName, RootDiskSize string
	RootVolumeID                                                                   string
	SecurityGroups, DataDisks, NICs                                                []string
	AttachedVolumes                                                                []string
	Tags                                                                           []string
	TagErr                                                                         error // ListTag(VM) fails: the driver only warns
}

func hosts(cidr string) ([]string, error) {
	ip, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	var ips []string
	for ip := ip.Mask(ipnet.Mask); ipnet.Contains(ip); inc(ip) {
		ips = append(ips, ip.String())
	}
	if len(ips) > 3 {
		return ips[3 : len(ips)-1], nil
	}
	return nil, errors.New("Not Exist Available IPs")
}

func inc(ip net.IP) {
	for j := len(ip) - 1; j >= 0; j-- {
		ip[j]++
		if ip[j] > 0 {
			break
		}
	}
}

func availableFixedIP(c *conn, subnetID string) (string, error) {
	subnet, err := subnets.Get(c.NetworkClient, subnetID).Extract()
	if err != nil {
		return "", err
	}
	pager, err := servers.List(c.ComputeClient, nil).AllPages()
	if err != nil {
		return "", err
	}
	all, err := servers.ExtractServers(pager)
	if err != nil {
		return "", err
	}
	subnetIps, err := hosts(subnet.CIDR)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, vm := range all {
		privateIP := ""
		for _, addrs := range vm.Addresses {
			list, _ := addrs.([]interface{})
			for _, a := range list {
				m, _ := a.(map[string]interface{})
				if m["OS-EXT-IPS:type"] == "fixed" {
					privateIP, _ = m["addr"].(string)
				}
			}
		}
		if privateIP != "" {
			used[privateIP] = true
		}
	}
	var free []string
	for _, ip := range subnetIps {
		if !used[ip] {
			free = append(free, ip)
		}
	}
	if len(free) == 0 {
		return "", errors.New("Not Exist Available IPs")
	}
	mrand.Seed(time.Now().UnixNano())
	return free[mrand.Intn(len(free))], nil
}

func createBlockDeviceSet(imageUUID, diskSize string) (bootfromvolume.BlockDevice, error) {
	volumeSize, err := strconv.Atoi(diskSize)
	if err != nil {
		return bootfromvolume.BlockDevice{}, errors.New("Invalid RootDiskSize")
	}
	return bootfromvolume.BlockDevice{
		UUID:                imageUUID,
		SourceType:          bootfromvolume.SourceImage,
		VolumeSize:          volumeSize,
		DestinationType:     bootfromvolume.DestinationVolume,
		DeleteOnTermination: true,
	}, nil
}

// linuxServerCreatOptConvertKeyPairWrapping: v2's servers.CreateOpts.BlockDevice is v0.12's
// bootfromvolume.CreateOptsExt; both put block_device_mapping_v2 beside imageRef in the same body.
func linuxServerCreatOptConvertKeyPairWrapping(c *conn, base servers.CreateOpts, blockDevices []bootfromvolume.BlockDevice, keyName string) (keypairs.CreateOptsExt, error) {
	keyPair, err := getRawKey(c, keyName)
	if err != nil {
		return keypairs.CreateOptsExt{}, err
	}
	userData := strings.ReplaceAll(cloudInit, "{{username}}", SSHDefaultUser)
	userData = strings.ReplaceAll(userData, "{{public_key}}", keyPair.PublicKey)
	base.UserData = []byte(userData)
	var builder servers.CreateOptsBuilder = base
	if len(blockDevices) > 0 {
		builder = bootfromvolume.CreateOptsExt{CreateOptsBuilder: base, BlockDevice: blockDevices}
	}
	return keypairs.CreateOptsExt{CreateOptsBuilder: builder, KeyName: keyPair.Name}, nil
}

// severCreatePublicImageLinuxOS (the Linux public-image branch of StartVM).
func severCreatePublicImageLinuxOS(c *conn, base servers.CreateOpts, req vmReq) (*servers.Server, error) {
	image, err := getRawImage(req.ImageID, c.ImageClient)
	if err != nil {
		return nil, err
	}
	base.ImageRef = image.ID
	base.Metadata = map[string]string{"imagekey": image.ID, "os_type": "linux"}
	volumeClient := c.VolumeClient()
	var diskSize string
	if !(req.RootDiskSize == "" || req.RootDiskSize == "default") {
		if volumeClient == nil {
			return nil, errors.New("this Openstack cannot provide VolumeClient. RootDiskSize cannot be changed")
		}
		diskSize = req.RootDiskSize
	} else if volumeClient != nil {
		vmSpec, err := GetFlavorByName(c.ComputeClient, req.FlavorName)
		if err != nil {
			return nil, fmt.Errorf("failed to get vmspec, err : %s", err)
		}
		diskSize = strconv.Itoa(vmSpec.Disk)
	}
	var blockDevices []bootfromvolume.BlockDevice
	if diskSize != "" {
		bd, err := createBlockDeviceSet(image.ID, diskSize)
		if err != nil {
			return nil, err
		}
		blockDevices = []bootfromvolume.BlockDevice{bd}
	}
	opts, err := linuxServerCreatOptConvertKeyPairWrapping(c, base, blockDevices, req.KeyName)
	if err != nil {
		return nil, err
	}
	return servers.Create(c.ComputeClient, opts).Extract()
}

// startVM is StartVM up to servers.Create; the wait loop, AssociatePublicIP and the final read are
// separate steps of the flow (same calls, same order).
func startVMCreate(c *conn, req vmReq) (*servers.Server, error) {
	pager, err := servers.List(c.ComputeClient, servers.ListOpts{Name: req.Name}).AllPages()
	if err != nil {
		return nil, fmt.Errorf("failed to get vm with name %s: %w", req.Name, err)
	}
	exist, err := servers.ExtractServers(pager)
	if err != nil {
		return nil, err
	}
	if len(exist) != 0 {
		return nil, fmt.Errorf("VirtualMachine with name %s already exist", req.Name)
	}
	vmSpec, err := GetFlavorByName(c.ComputeClient, req.FlavorName)
	if err != nil {
		return nil, fmt.Errorf("failed to get vmspec, err : %s", err)
	}
	rawVpc, err := getRawVPC(c, req.VPCID)
	if err != nil {
		return nil, err
	}
	fixedIPSubnet := ""
	for _, id := range rawVpc.Subnets {
		subnet, err := subnets.Get(c.NetworkClient, id).Extract()
		if err != nil {
			return nil, err
		}
		if subnet.ID == req.SubnetID {
			fixedIPSubnet = subnet.ID
			break
		}
	}
	if fixedIPSubnet == "" {
		return nil, errors.New("not found subnet")
	}
	fixedIP, err := availableFixedIP(c, fixedIPSubnet)
	if err != nil {
		return nil, err
	}
	sgIDs := make([]string, len(req.SecurityGroupIDs))
	for i, id := range req.SecurityGroupIDs {
		sg, err := getRawSecurity(c, id)
		if err != nil {
			return nil, fmt.Errorf("security group %s: %w", id, err)
		}
		sgIDs[i] = sg.ID
	}
	base := servers.CreateOpts{
		Name:           req.Name,
		FlavorRef:      vmSpec.ID,
		Networks:       []servers.Network{{UUID: rawVpc.ID, FixedIP: fixedIP}},
		SecurityGroups: sgIDs, // the driver passes ids where Nova's API says names
	}
	if cfg.Zone != "" {
		base.AvailabilityZone = cfg.Zone
	}
	// getOSTypeByImage: the image's "metadata" (absent from Glance v2) decides; Linux otherwise.
	image, err := getRawImage(req.ImageID, c.ImageClient)
	if err != nil {
		return nil, fmt.Errorf("failed to get image os type, err : %s", err)
	}
	if image.Metadata["os_type"] == "windows" {
		return nil, errors.New("this flow covers the Linux image path only")
	}
	return severCreatePublicImageLinuxOS(c, base, req)
}

// startVMWait is StartVM's wait loop: a servers get per second until ACTIVE (ERROR fails early).
func startVMWait(c *conn, id string) (*servers.Server, int, error) {
	polls := 0
	for {
		polls++
		s, err := servers.Get(c.ComputeClient, id).Extract()
		if err != nil {
			return nil, polls, fmt.Errorf("failed to get vmInfo, err : %s", err)
		}
		status := strings.ToLower(s.Status)
		if status == "error" {
			return nil, polls, fmt.Errorf("VM entered ERROR state: [code=%d] %s (details: %s)", s.Fault.Code, s.Fault.Message, s.Fault.Details)
		}
		if status == "active" {
			return s, polls, nil
		}
		if polls > 240 {
			return nil, polls, fmt.Errorf("failed to start vm, exceeded maximum retry count 240 (last status: %s)", s.Status)
		}
		time.Sleep(1 * time.Second)
	}
}

// associatePublicIP: floating IP create on the external network, then (retried each second) the
// server's port by device id and a floating IP update to that port.
func associatePublicIP(c *conn, serverID string) (string, string, error) {
	externVPCID, _ := GetPublicVPCInfo(c.NetworkClient, "ID")
	publicIP, err := layer3floatingips.Create(c.NetworkClient, layer3floatingips.CreateOpts{FloatingNetworkID: externVPCID}).Extract()
	if err != nil {
		return "", "", err
	}
	for retry := 0; ; retry++ {
		port, err := GetPortByDeviceID(c.NetworkClient, serverID)
		if err == nil && port != nil {
			portID := port.ID
			_, err = layer3floatingips.Update(c.NetworkClient, publicIP.ID, layer3floatingips.UpdateOpts{PortID: &portID}).Extract()
			if err == nil {
				return publicIP.FloatingIP, port.ID, nil
			}
		}
		time.Sleep(1 * time.Second)
		if retry >= 120 {
			return publicIP.FloatingIP, "", fmt.Errorf("failed to associate floating ip to vm, exceeded maximum retry count 120, err = %v", err)
		}
	}
}

func getRawDisk(id string, volumeClient *gophercloud.ServiceClient) (*volumes3.Volume, error) {
	switch volumeClient.Type {
	case VolumeV3, VolumeV2: // v2's response decodes into the same struct (volumes2ToVolumes3)
		return volumes3.Get(volumeClient, id).Extract()
	}
	return nil, errors.New("VolumeClient not found")
}

// getAvailabilityZoneFromAPI: a plain net/http GET of the server (no microversion header).
func getAvailabilityZoneFromAPI(computeClient *gophercloud.ServiceClient, serverID string) (string, error) {
	u := computeClient.ServiceURL("servers", serverID)
	client := &http.Client{Transport: countingTransport{&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Add("X-Auth-Token", computeClient.TokenID)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("failed to get server details: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", err
	}
	if server, ok := doc["server"].(map[string]interface{}); ok {
		if zone, ok := server["OS-EXT-AZ:availability_zone"].(string); ok {
			return zone, nil
		}
	}
	return "", errors.New("availability zone not found")
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// mappingServerInfo issues the driver's reads for one server, in the driver's order. Its last call,
// ListTag(VM), sets Microversion 2.52 on the connection's shared compute client (the driver copies the
// *ServiceClient pointer, not the client), so every later Nova call of the same connection carries it.
func mappingServerInfo(c *conn, server servers.Server) vmInfo {
	info := vmInfo{ID: server.ID, Name: server.Name, Status: server.Status, KeyName: server.KeyName}
	if zone, err := getAvailabilityZoneFromAPI(c.ComputeClient, server.ID); err == nil && zone != "" {
		info.Zone = zone
	} else {
		info.Zone = cfg.Zone
	}
	for key, value := range server.Metadata {
		if key == "imagekey" {
			_, _ = getRawImage(value, c.ImageClient)
		}
	}
	for _, v := range server.AttachedVolumes {
		info.AttachedVolumes = append(info.AttachedVolumes, v.ID)
	}
	if len(server.AttachedVolumes) > 0 && c.VolumeClient() != nil {
		var vols []*volumes3.Volume
		ok := true
		for _, av := range server.AttachedVolumes {
			vol, err := getRawDisk(av.ID, c.VolumeClient())
			if err != nil {
				ok = false
				break
			}
			vols = append(vols, vol)
		}
		if ok {
			for _, vol := range vols {
				if vol.Bootable == "true" {
					info.RootDiskSize = strconv.Itoa(vol.Size)
					info.RootVolumeID = vol.ID
				} else {
					info.DataDisks = append(info.DataDisks, vol.ID)
				}
			}
		}
	}
	if flavorID, ok := server.Flavor["id"].(string); ok {
		if flavor, _ := flavors.Get(c.ComputeClient, flavorID).Extract(); flavor != nil {
			info.VMSpecName = flavor.Name
			if info.RootDiskSize == "" {
				info.RootDiskSize = strconv.Itoa(flavor.Disk)
			}
		}
	} else if name, ok := server.Flavor["original_name"].(string); ok {
		info.VMSpecName = name // (microversion >= 2.47: no flavor id, the driver leaves VMSpecName empty)
	}
	for _, sgMap := range server.SecurityGroups {
		name, _ := sgMap["name"].(string)
		info.SecurityGroups = append(info.SecurityGroups, name)
		_, _ = GetSecurityByName(c.ComputeClient, name)
	}
	for k, addrs := range server.Addresses {
		_, _ = GetNetworkByName(c.NetworkClient, k)
		list, _ := addrs.([]interface{})
		for _, a := range list {
			m, _ := a.(map[string]interface{})
			if m["OS-EXT-IPS:type"] == "floating" {
				info.PublicIP, _ = m["addr"].(string)
			}
			if m["OS-EXT-IPS:type"] == "fixed" {
				info.PrivateIP, _ = m["addr"].(string)
			}
		}
	}
	if allPages, err := attachinterfaces.List(c.ComputeClient, server.ID).AllPages(); err == nil {
		if ifaces, err := attachinterfaces.ExtractInterfaces(allPages); err == nil {
			names := make([]string, len(ifaces))
			for i, iface := range ifaces {
				names[i] = iface.PortID
				if p, err := ports.Get(c.NetworkClient, iface.PortID).Extract(); err == nil && p.Name != "" {
					names[i] = p.Name
				}
			}
			idx := make([]int, len(ifaces))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(i, j int) bool {
				a, b := uuidRe.MatchString(names[idx[i]]), uuidRe.MatchString(names[idx[j]])
				if a != b {
					return a
				}
				return names[idx[i]] < names[idx[j]]
			})
			for n, i := range idx {
				iface := ifaces[i]
				info.NICs = append(info.NICs, iface.PortID)
				if len(iface.FixedIPs) > 0 {
					_, _ = GetSubnetByID(c.NetworkClient, iface.FixedIPs[0].SubnetID)
					if n == 0 && iface.FixedIPs[0].IPAddress != "" {
						info.PrivateIP = iface.FixedIPs[0].IPAddress
					}
				}
				if pg, err := layer3floatingips.List(c.NetworkClient, layer3floatingips.ListOpts{PortID: iface.PortID}).AllPages(); err == nil {
					if fips, err := layer3floatingips.ExtractFloatingIPs(pg); err == nil && n == 0 && len(fips) > 0 && fips[0].FloatingIP != "" {
						info.PublicIP = fips[0].FloatingIP
					}
				}
			}
		}
	}
	// TagHandler.ListTag(VM): getResourceSystemID has the id; handleListTag sets 2.52 on the shared client.
	cc := c.ComputeClient
	cc.Microversion = "2.52"
	if tags, err := computeTags.List(cc, server.ID).Extract(); err == nil {
		info.Tags = tags
	} else {
		info.TagErr = err
	}
	return info
}

func getRawVM(c *conn, id string) (*servers.Server, error) {
	return servers.Get(c.ComputeClient, id).Extract()
}

func getVM(c *conn, id string) (vmInfo, error) {
	s, err := getRawVM(c, id)
	if err != nil {
		return vmInfo{}, fmt.Errorf("Failed to Get VM. err = %s", err)
	}
	return mappingServerInfo(c, *s), nil
}

func getVMStatus(c *conn, id string) (string, error) {
	s, err := servers.Get(c.ComputeClient, id).Extract()
	if err != nil {
		return "", err
	}
	switch strings.ToLower(s.Status) {
	case "build":
		return "Creating", nil
	case "active":
		return "Running", nil
	case "shutoff":
		return "Suspended", nil
	case "reboot":
		return "Rebooting", nil
	}
	return "Failed", nil
}

func suspendVM(c *conn, id string) error {
	return startstop.Stop(c.ComputeClient, id).Err
}

func resumeVM(c *conn, id string) error {
	return startstop.Start(c.ComputeClient, id).Err
}

func rebootVM(c *conn, id string) error {
	return servers.Reboot(c.ComputeClient, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
}

func vmCleaner(c *conn, id, publicIP string) error {
	server, err := getVM(c, id)
	if err != nil {
		return err
	}
	if publicIP != "" {
		server.PublicIP = publicIP
	}
	if server.PublicIP != "" {
		pager, err := layer3floatingips.List(c.NetworkClient, layer3floatingips.ListOpts{}).AllPages()
		if err != nil {
			return err
		}
		list, err := layer3floatingips.ExtractFloatingIPs(pager)
		if err != nil {
			return err
		}
		fipID := ""
		for _, p := range list {
			if strings.EqualFold(server.PublicIP, p.FloatingIP) {
				fipID = p.ID
				break
			}
		}
		if fipID != "" {
			if err := layer3floatingips.Delete(c.NetworkClient, fipID).ExtractErr(); err != nil {
				return err
			}
		}
	}
	if err := servers.Delete(c.ComputeClient, server.ID).ExtractErr(); err != nil {
		return err
	}
	for retry := 0; ; retry++ {
		pager, err := servers.List(c.ComputeClient, servers.ListOpts{Name: server.Name}).AllPages()
		if err == nil {
			list, err := servers.ExtractServers(pager)
			if err == nil && len(list) == 0 {
				return nil
			}
		}
		time.Sleep(1 * time.Second)
		if retry >= 120 {
			return errors.New("Success to Terminate. but Failed to confirm Terminate VM err = exceeded maximum retry count 120")
		}
	}
}

func terminateVM(c *conn, id string) error {
	server, err := getVM(c, id)
	if err != nil {
		return fmt.Errorf("Failed to get VM info. err = %s", err)
	}
	return vmCleaner(c, id, server.PublicIP)
}

// ---------------------------------------------------------------------------------------------------
// the flow

func must(err error, format string, args ...interface{}) error {
	if err != nil {
		return fmt.Errorf(format+": %w", append(args, err)...)
	}
	return nil
}

func main() {
	flag.StringVar(&cfg.AuthURL, "auth-url", env("OS_AUTH_URL", ""), "Keystone URL (IdentityEndpoint), e.g. http://127.0.0.1:8192/v3")
	flag.StringVar(&cfg.Username, "username", env("OS_USERNAME", "admin"), "user name")
	flag.StringVar(&cfg.Password, "password", env("OS_PASSWORD", "admin"), "password")
	flag.StringVar(&cfg.DomainName, "domain", env("OS_DOMAIN_NAME", "cloud-1"), "Keystone domain name (the twin's cloud)")
	flag.StringVar(&cfg.ProjectID, "project-id", env("OS_PROJECT_ID", ""), "project id (CB-Spider's ProjectID credential)")
	flag.StringVar(&cfg.Region, "region", env("OS_REGION_NAME", "RegionOne"), "region")
	flag.StringVar(&cfg.Zone, "zone", env("OS_ZONE", "nova"), "availability zone (CB-Spider's RegionInfo.Zone)")
	flag.StringVar(&cfg.Image, "image", env("CBSPIDER_IMAGE", "ubuntu-22.04"), "image name, resolved to its id with ListImage")
	flag.StringVar(&cfg.Flavor, "flavor", env("CBSPIDER_FLAVOR", "m1.small"), "flavor name (VMSpecName)")
	flag.StringVar(&cfg.RootDiskSize, "root-disk-size", env("CBSPIDER_ROOT_DISK_SIZE", ""), "RootDiskSize (empty: the flavor's disk)")
	flag.StringVar(&cfg.Prefix, "prefix", env("CBSPIDER_NAME_PREFIX", "cbsflow"), "name prefix of everything created")
	timeout := flag.Duration("timeout", 180*time.Second, "longest wait for one state change")
	flag.Parse()
	cfg.Timeout = *timeout
	if cfg.AuthURL == "" || cfg.ProjectID == "" {
		fmt.Fprintln(os.Stderr, "OS_AUTH_URL and OS_PROJECT_ID (or -auth-url, -project-id) are required")
		os.Exit(2)
	}

	var (
		imageID             string
		flavorDisk          int
		vpc                 vpcInfo
		routerID, sgID      string
		keyName, vmID       string
		rootVolumeID        string
		publicIP, vmPortID  string
		vpcName             = newName("vpc")
		subnetName          = newName("subnet")
		sgName              = newName("sg")
		vmName              = newName("vm")
		expectDeleteOnTerm  = true // createBlockDeviceSet always sets delete_on_termination
		expectedRootSizeGiB int
	)
	keyName = newName("key")

	step("connect", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		vol := "volumev3"
		if c.Volume3Client == nil {
			vol = "volumev2"
		}
		nlb := "octavia"
		if c.NLBClient == nil {
			nlb = "none"
		}
		return fmt.Sprintf("identity compute network image %s(%s) lb=%s; %s", vol, c.VolumeClient().Endpoint, nlb,
			strings.Join(c.warnings, "; ")), nil
	})

	step("ListImage", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		list, err := listImage(c)
		if err != nil {
			return "", err
		}
		for _, img := range list {
			if img.Name == cfg.Image {
				imageID = img.ID
			}
		}
		if imageID == "" {
			return "", fmt.Errorf("image %q not in the %d images listed", cfg.Image, len(list))
		}
		f, err := GetFlavorByName(c.ComputeClient, cfg.Flavor) // check: the flavor StartVM will use
		if err != nil {
			return "", err
		}
		flavorDisk = f.Disk
		return fmt.Sprintf("%s = %s; flavor %s disk %d GiB", cfg.Image, imageID, cfg.Flavor, f.Disk), nil
	})

	step("CreateVPC", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		vpc, routerID, err = createVPC(c, vpcName, []subnetReq{{Name: subnetName, CIDR: "10.77.1.0/24"}})
		if vpc.ID != "" {
			addCleanup("vpc", func(c *conn) error { _, err := vpcCleaner(c, vpc.ID); return err })
		}
		if err != nil {
			return "", err
		}
		if len(vpc.Subnets) != 1 || vpc.Subnets[0].Name != subnetName || vpc.Subnets[0].CIDR != "10.77.1.0/24" {
			return "", fmt.Errorf("VPC %s has subnets %+v, want one %s 10.77.1.0/24", vpc.ID, vpc.Subnets, subnetName)
		}
		return fmt.Sprintf("network %s subnet %s router %s", vpc.ID, vpc.Subnets[0].ID, routerID), nil
	})

	step("GetVPC", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		got, err := getVPC(c, vpc.ID)
		if err != nil {
			return "", err
		}
		if got.Name != vpcName || len(got.Subnets) != 1 {
			return "", fmt.Errorf("GetVPC: %+v", got)
		}
		// check: the router has the external gateway and an interface on the subnet
		extID, err := GetPublicVPCInfo(c.NetworkClient, "ID")
		if err != nil {
			return "", err
		}
		r, err := routers.Get(c.NetworkClient, routerID).Extract()
		if err != nil {
			return "", must(err, "check: router get")
		}
		if r.Name != vpcName || r.GatewayInfo.NetworkID != extID {
			return "", fmt.Errorf("check: router %s name %q gateway %q, want %q and external network %s", r.ID, r.Name, r.GatewayInfo.NetworkID, vpcName, extID)
		}
		pg, err := ports.List(c.NetworkClient, ports.ListOpts{DeviceID: routerID}).AllPages()
		if err != nil {
			return "", err
		}
		rports, _ := ports.ExtractPorts(pg)
		found := false
		for _, p := range rports {
			for _, ip := range p.FixedIPs {
				if ip.SubnetID == vpc.Subnets[0].ID && p.DeviceOwner == "network:router_interface" {
					found = true
				}
			}
		}
		if !found {
			return "", fmt.Errorf("check: router %s has no network:router_interface port on subnet %s (ports %+v)", routerID, vpc.Subnets[0].ID, rports)
		}
		return fmt.Sprintf("router gateway on external network %s, interface on the subnet", extID), nil
	})

	wantRules := []SecurityRuleInfo{
		{Direction: "inbound", IPProtocol: "tcp", FromPort: "22", ToPort: "22", CIDR: "0.0.0.0/0"},
		{Direction: "inbound", IPProtocol: "icmp", FromPort: "-1", ToPort: "-1", CIDR: "0.0.0.0/0"},
		{Direction: "outbound", IPProtocol: "all", FromPort: "-1", ToPort: "-1", CIDR: "0.0.0.0/0"},
	}
	extraRule := SecurityRuleInfo{Direction: "inbound", IPProtocol: "tcp", FromPort: "80", ToPort: "80", CIDR: "0.0.0.0/0"}
	hasRule := func(info *securityInfo, want SecurityRuleInfo) bool {
		for _, r := range info.Rules {
			if equalsRule(r, want) {
				return true
			}
		}
		return false
	}

	step("CreateSecurity", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		info, err := createSecurity(c, sgName, wantRules)
		if err != nil {
			return "", err
		}
		sgID = info.ID
		addCleanup("security group", func(c *conn) error { return deleteSecurity(c, sgID) })
		if info.Name != sgName {
			return "", fmt.Errorf("created group is named %q, want %q", info.Name, sgName)
		}
		for _, w := range wantRules {
			if !hasRule(info, w) {
				return "", fmt.Errorf("rule %+v missing after CreateSecurity: %+v", w, info.Rules)
			}
		}
		return fmt.Sprintf("%s with %d rules", sgID, len(info.Rules)), nil
	})

	step("AddRules", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		info, err := addRules(c, sgID, []SecurityRuleInfo{extraRule})
		if err != nil {
			return "", err
		}
		if !hasRule(info, extraRule) {
			return "", fmt.Errorf("rule %+v missing after AddRules: %+v", extraRule, info.Rules)
		}
		return fmt.Sprintf("%d rules", len(info.Rules)), nil
	})

	step("GetSecurity+ListSecurity", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		info, err := getSecurity(c, sgID)
		if err != nil {
			return "", err
		}
		for _, w := range append(wantRules, extraRule) {
			if !hasRule(info, w) {
				return "", fmt.Errorf("rule %+v missing on read back: %+v", w, info.Rules)
			}
		}
		list, err := listSecurity(c)
		if err != nil {
			return "", err
		}
		names := []string{}
		found := false
		for _, s := range list {
			names = append(names, s.Name)
			if s.ID == sgID && s.Name == sgName && len(s.Rules) == len(info.Rules) {
				found = true
			}
		}
		if !found {
			return "", fmt.Errorf("ListSecurity misses %s (%v)", sgName, names)
		}
		return fmt.Sprintf("%d rules; listed among %v", len(info.Rules), names), nil
	})

	step("CreateKey", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		kp, err := createKey(c, keyName)
		if err != nil {
			return "", err
		}
		addCleanup("key", func(c *conn) error { return deleteKey(c, keyName) })
		if kp.Name != keyName || !strings.Contains(kp.PrivateKey, "PRIVATE KEY") || kp.PublicKey == "" || kp.Fingerprint == "" {
			return "", fmt.Errorf("key pair %q: private key %d bytes, public key %d bytes, fingerprint %q", kp.Name, len(kp.PrivateKey), len(kp.PublicKey), kp.Fingerprint)
		}
		return fmt.Sprintf("%s fingerprint %s, private key returned", keyName, kp.Fingerprint), nil
	})

	var startConn *conn
	step("StartVM: create (BFV)", func() (string, error) {
		var err error
		startConn, err = connectCloud()
		if err != nil {
			return "", err
		}
		if startConn.VolumeClient() == nil {
			return "", errors.New("no volume client: StartVM would boot from an image, not from a volume")
		}
		req := vmReq{Name: vmName, ImageID: imageID, FlavorName: cfg.Flavor, VPCID: vpc.ID, SubnetID: vpc.Subnets[0].ID,
			RootDiskSize: cfg.RootDiskSize, KeyName: keyName, SecurityGroupIDs: []string{sgID}}
		s, err := startVMCreate(startConn, req)
		if err != nil {
			return "", err
		}
		vmID = s.ID
		addCleanup("vm", func(c *conn) error { return vmCleaner(c, vmID, publicIP) })
		return fmt.Sprintf("server %s", vmID), nil
	})
	expectedRootSizeGiB = flavorDisk
	if cfg.RootDiskSize != "" && cfg.RootDiskSize != "default" {
		expectedRootSizeGiB, _ = strconv.Atoi(cfg.RootDiskSize)
	}

	step("StartVM: wait ACTIVE", func() (string, error) {
		s, polls, err := startVMWait(startConn, vmID)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s after %d polls", s.Status, polls), nil
	})

	step("StartVM: AssociatePublicIP", func() (string, error) {
		ip, portID, err := associatePublicIP(startConn, vmID)
		publicIP = ip // (vmCleaner deletes the floating IP by address)
		if err != nil {
			return "", err
		}
		publicIP, vmPortID = ip, portID
		return fmt.Sprintf("floating IP %s -> port %s", ip, portID), nil
	})

	step("StartVM: read back", func() (string, error) {
		s, err := servers.Get(startConn.ComputeClient, vmID).Extract()
		if err != nil {
			return "", err
		}
		info := mappingServerInfo(startConn, *s)
		if info.PublicIP == "" {
			info.PublicIP = publicIP // the driver fills it in when Nova's addresses lag
		}
		if info.PublicIP != publicIP {
			return "", fmt.Errorf("VMInfo.PublicIP %q, want %q", info.PublicIP, publicIP)
		}
		return fmt.Sprintf("status %s private %s public %s zone %s", info.Status, info.PrivateIP, info.PublicIP, info.Zone), nil
	})

	step("GetVM: root volume", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		info, err := getVM(c, vmID)
		if err != nil {
			return "", err
		}
		if info.Status != "ACTIVE" || info.KeyName != keyName {
			return "", fmt.Errorf("server status %s key %q", info.Status, info.KeyName)
		}
		if len(info.SecurityGroups) != 1 || info.SecurityGroups[0] != sgName {
			return "", fmt.Errorf("server security groups %v, want [%s]", info.SecurityGroups, sgName)
		}
		if len(info.AttachedVolumes) != 1 {
			return "", fmt.Errorf("os-extended-volumes:volumes_attached lists %v, want the one root volume", info.AttachedVolumes)
		}
		rootVolumeID = info.AttachedVolumes[0]
		if info.RootVolumeID != rootVolumeID {
			return "", fmt.Errorf("mappingServerInfo found no bootable volume among %v (root %q)", info.AttachedVolumes, info.RootVolumeID)
		}
		if info.PublicIP != publicIP || info.PrivateIP == "" || len(info.NICs) != 1 || info.NICs[0] != vmPortID {
			return "", fmt.Errorf("addresses: public %q (want %s) private %q NICs %v (want [%s])", info.PublicIP, publicIP, info.PrivateIP, info.NICs, vmPortID)
		}
		// check: the volume in Cinder
		vol, err := volumes3.Get(c.VolumeClient(), rootVolumeID).Extract()
		if err != nil {
			return "", must(err, "check: volume get %s", rootVolumeID)
		}
		if vol.Status != "in-use" || vol.Bootable != "true" || vol.Size != expectedRootSizeGiB {
			return "", fmt.Errorf("check: root volume %s status %q bootable %q size %d, want in-use/true/%d", vol.ID, vol.Status, vol.Bootable, vol.Size, expectedRootSizeGiB)
		}
		if len(vol.Attachments) != 1 || vol.Attachments[0].ServerID != vmID {
			return "", fmt.Errorf("check: root volume %s attachments %+v, want server %s", vol.ID, vol.Attachments, vmID)
		}
		pg, err := volumes3.List(c.VolumeClient(), volumes3.ListOpts{}).AllPages()
		if err != nil {
			return "", must(err, "check: volume list")
		}
		vols, _ := volumes3.ExtractVolumes(pg)
		if len(vols) != 1 || vols[0].ID != rootVolumeID {
			return "", fmt.Errorf("check: volume list has %d volumes, want only %s", len(vols), rootVolumeID)
		}
		tags := fmt.Sprint(info.Tags)
		if info.TagErr != nil {
			tags = "unreadable (driver warning: " + info.TagErr.Error() + ")"
		}
		return fmt.Sprintf("root volume %s %d GiB in-use on %s device %s; spec %q; VM tags %s", vol.ID, vol.Size, vmID, vol.Attachments[0].Device, info.VMSpecName, tags), nil
	})

	control := func(name string, action func(*conn, string) error, want string) {
		step(name, func() (string, error) {
			c, err := connectCloud()
			if err != nil {
				return "", err
			}
			if err := action(c, vmID); err != nil {
				return "", err
			}
			seen := []string{}
			err = waitFor(name+" to reach "+want, 200*time.Millisecond, func() (bool, error) {
				c2, err := connectCloud() // GetVMStatus is its own Spider call
				if err != nil {
					return false, err
				}
				st, err := getVMStatus(c2, vmID)
				if err != nil {
					return false, err
				}
				if len(seen) == 0 || seen[len(seen)-1] != st {
					seen = append(seen, st)
				}
				return st == want, nil
			})
			if err != nil {
				return "", fmt.Errorf("%w (statuses seen: %v)", err, seen)
			}
			return "status " + strings.Join(seen, " -> "), nil
		})
	}
	control("SuspendVM", suspendVM, "Suspended")
	control("ResumeVM", resumeVM, "Running")
	control("RebootVM", rebootVM, "Running")

	step("TerminateVM", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		if err := terminateVM(c, vmID); err != nil {
			return "", err
		}
		dropCleanup("vm")
		// check: the server, its floating IP and (delete_on_termination) its root volume go
		if _, err := servers.Get(c.ComputeClient, vmID).Extract(); err == nil {
			return "", fmt.Errorf("check: server %s still readable after TerminateVM", vmID)
		}
		pg, err := layer3floatingips.List(c.NetworkClient, layer3floatingips.ListOpts{}).AllPages()
		if err != nil {
			return "", err
		}
		if fips, _ := layer3floatingips.ExtractFloatingIPs(pg); len(fips) != 0 {
			return "", fmt.Errorf("check: %d floating IPs left (%s...)", len(fips), fips[0].FloatingIP)
		}
		if expectDeleteOnTerm {
			err = waitFor("root volume "+rootVolumeID+" to go", 200*time.Millisecond, func() (bool, error) {
				_, err := volumes3.Get(c.VolumeClient(), rootVolumeID).Extract()
				if _, ok := err.(gophercloud.ErrDefault404); ok {
					return true, nil
				}
				return false, nil
			})
			if err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("server, floating IP %s and root volume %s gone", publicIP, rootVolumeID), nil
	})

	step("DeleteKey", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		if err := deleteKey(c, keyName); err != nil {
			return "", err
		}
		dropCleanup("key")
		if exist, err := checkExistKey(c, keyName); err != nil || exist {
			return "", fmt.Errorf("check: key %s still listed (err %v)", keyName, err)
		}
		return keyName + " gone", nil
	})

	step("DeleteSecurity", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		if err := deleteSecurity(c, sgID); err != nil {
			return "", err
		}
		dropCleanup("security group")
		if _, err := getRawSecurity(c, sgID); err == nil {
			return "", fmt.Errorf("check: security group %s still readable", sgID)
		}
		return sgID + " gone", nil
	})

	step("DeleteVPC", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		warnings, err := vpcCleaner(c, vpc.ID)
		if err != nil {
			return "", fmt.Errorf("%w (driver warnings: %v)", err, warnings)
		}
		dropCleanup("vpc")
		if len(warnings) > 0 {
			return "", fmt.Errorf("DeleteVPC succeeded but the driver logged: %v", warnings)
		}
		return fmt.Sprintf("network %s, subnet, router %s gone", vpc.ID, routerID), nil
	})

	step("nothing left", func() (string, error) {
		c, err := connectCloud()
		if err != nil {
			return "", err
		}
		var problems []string
		if pg, err := servers.List(c.ComputeClient, nil).AllPages(); err != nil {
			problems = append(problems, "servers: "+err.Error())
		} else if l, _ := servers.ExtractServers(pg); len(l) != 0 {
			problems = append(problems, fmt.Sprintf("%d servers", len(l)))
		}
		if pg, err := volumes3.List(c.VolumeClient(), volumes3.ListOpts{}).AllPages(); err != nil {
			problems = append(problems, "volumes: "+err.Error())
		} else if l, _ := volumes3.ExtractVolumes(pg); len(l) != 0 {
			problems = append(problems, fmt.Sprintf("%d volumes (%s %s)", len(l), l[0].ID, l[0].Status))
		}
		if pg, err := ports.List(c.NetworkClient, ports.ListOpts{ProjectID: cfg.ProjectID}).AllPages(); err != nil {
			problems = append(problems, "ports: "+err.Error())
		} else if l, _ := ports.ExtractPorts(pg); len(l) != 0 {
			owners := []string{}
			for _, p := range l {
				owners = append(owners, p.DeviceOwner+"@"+p.NetworkID)
			}
			problems = append(problems, fmt.Sprintf("%d ports %v", len(l), owners))
		}
		if pg, err := layer3floatingips.List(c.NetworkClient, layer3floatingips.ListOpts{ProjectID: cfg.ProjectID}).AllPages(); err != nil {
			problems = append(problems, "floating IPs: "+err.Error())
		} else if l, _ := layer3floatingips.ExtractFloatingIPs(pg); len(l) != 0 {
			problems = append(problems, fmt.Sprintf("%d floating IPs", len(l)))
		}
		if pg, err := routers.List(c.NetworkClient, routers.ListOpts{ProjectID: cfg.ProjectID}).AllPages(); err != nil {
			problems = append(problems, "routers: "+err.Error())
		} else if l, _ := routers.ExtractRouters(pg); len(l) != 0 {
			problems = append(problems, fmt.Sprintf("%d routers", len(l)))
		}
		if pg, err := networks.List(c.NetworkClient, networks.ListOpts{}).AllPages(); err != nil {
			problems = append(problems, "networks: "+err.Error())
		} else {
			var l []NetworkWithExt
			_ = networks.ExtractNetworksInto(pg, &l)
			for _, n := range l {
				if n.ID == vpc.ID || strings.HasPrefix(n.Name, cfg.Prefix) || (n.ProjectID == cfg.ProjectID && !n.External) {
					problems = append(problems, fmt.Sprintf("network %s %q", n.ID, n.Name))
				}
			}
		}
		if pg, err := subnets.List(c.NetworkClient, subnets.ListOpts{}).AllPages(); err != nil {
			problems = append(problems, "subnets: "+err.Error())
		} else if l, _ := subnets.ExtractSubnets(pg); true {
			for _, s := range l {
				if s.NetworkID == vpc.ID || strings.HasPrefix(s.Name, cfg.Prefix) {
					problems = append(problems, fmt.Sprintf("subnet %s %q", s.ID, s.Name))
				}
			}
		}
		sgNames := []string{}
		if pg, err := groups.List(c.NetworkClient, groups.ListOpts{ProjectID: cfg.ProjectID}).AllPages(); err != nil {
			problems = append(problems, "security groups: "+err.Error())
		} else if l, _ := groups.ExtractGroups(pg); true {
			for _, g := range l {
				sgNames = append(sgNames, g.Name)
				if g.Name != "default" {
					problems = append(problems, fmt.Sprintf("security group %s %q", g.ID, g.Name))
				}
			}
		}
		if pg, err := keypairs.List(c.ComputeClient).AllPages(); err != nil {
			problems = append(problems, "key pairs: "+err.Error())
		} else if l, _ := keypairs.ExtractKeyPairs(pg); len(l) != 0 {
			problems = append(problems, fmt.Sprintf("%d key pairs", len(l)))
		}
		if len(problems) > 0 {
			return "", fmt.Errorf("left behind: %s", strings.Join(problems, "; "))
		}
		return fmt.Sprintf("no servers, volumes, ports, floating IPs, routers, key pairs; security groups %v", sgNames), nil
	})

	fmt.Printf("cbspider-openstack-flow: %d steps passed (%.1fs, %d HTTP calls)\n", passed, time.Since(flowStart).Seconds(), atomic.LoadInt64(&httpCalls))
}
