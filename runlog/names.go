package runlog

import (
	"regexp"
	"strings"
)

// JetStream names. They are part of the wire contract between replicas and
// agents of different versions: change them only with a migration.
const (
	jobsStream   = "KAIRO_JOBS"   // WorkQueue: one message per queued job
	eventsStream = "KAIRO_EVENTS" // Limits: every run's messages
	runsBucket   = "kairo_runs"   // KV: run records
	agentsBucket = "kairo_agents" // KV: agent heartbeats
	blobsBucket  = "kairo_blobs"  // Object store: reports

	jobsSubjects   = "kairo.jobs.>"
	eventsSubjects = "kairo.ev.>"
	eventsPrefix   = "kairo.ev."
	cancelPrefix   = "kairo.ctl.cancel." // core NATS: a nudge to the agent of a run being cancelled
	wakePrefix     = "kairo.ctl.wake."   // core NATS: a job was queued in a lane
)

// Message headers of the events stream.
const (
	hdrSeq      = "Kairo-Seq"
	hdrAttempt  = "Kairo-Attempt"
	hdrTerminal = "Kairo-Terminal"
)

// Lanes are separate queues with their own slots on every agent, so a long
// training run never holds up a forecast a client waits for.
const (
	LaneTrain    = "train"    // training runs and studies
	LaneForecast = "forecast" // /ws/predict forecasts
)

// Device classes a job asks for; agents take the classes they can serve.
const (
	ClassGPU = "gpu" // a GPU agent only: never falls back
	ClassCPU = "cpu"
	ClassAny = "any" // the GPU when the agent has one, else the CPU
)

// Lanes and Classes list the valid values.
var (
	Lanes   = []string{LaneTrain, LaneForecast}
	Classes = []string{ClassGPU, ClassCPU, ClassAny}
)

func jobSubject(lane, class, id string) string { return "kairo.jobs." + lane + "." + class + "." + id }
func eventSubject(id string) string            { return eventsPrefix + id }
func consumerName(lane, class string) string   { return lane + "-" + class }

// runIDFromSubject returns the run of an events subject.
func runIDFromSubject(subject string) string { return strings.TrimPrefix(subject, eventsPrefix) }

// ID prefixes: a run of the training hub, a forecast of /ws/predict.
const (
	RunPrefix      = "run_"
	ForecastPrefix = "forecast_"
)

var validID = regexp.MustCompile(`^(run|forecast)_[0-9a-f]{12}$`)

// ValidID reports whether id is a well-formed run or forecast ID.
func ValidID(id string) bool { return validID.MatchString(id) }

// CancelSubject is where a run's cancel nudge is published (core NATS, at
// most once: the agent also sees the cancel at its next lease renewal).
func CancelSubject(id string) string { return cancelPrefix + id }
