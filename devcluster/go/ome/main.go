// Command ome-manager runs OME's own InferenceService reconciler and OME's admission webhooks, from OME's packages,
// for the local cluster of devcluster/.
//
// OME's cmd/manager cannot be built here: it also starts the BaseModel controllers, whose model agent links a
// Rust library (pkg/xet) with crates fetched from GitHub. Everything an InferenceService needs is wired below the
// way OME's cmd/manager (v0.1.5) wires it; only the BaseModel, ClusterBaseModel, BenchmarkJob and AcceleratorClass
// controllers are left out (their webhooks are all served), and the webhook server listens on a host and certificate directory we choose.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/manager/signals"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kueuev1beta1 "sigs.k8s.io/kueue/apis/kueue/v1beta1"
	lws "sigs.k8s.io/lws/api/leaderworkerset/v1"
	schedulerpluginsv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/sgl-project/ome/pkg/apis/ome/v1beta1"
	"github.com/sgl-project/ome/pkg/constants"
	"github.com/sgl-project/ome/pkg/controller/v1beta1/controllerconfig"
	isvccontroller "github.com/sgl-project/ome/pkg/controller/v1beta1/inferenceservice"
	"github.com/sgl-project/ome/pkg/runtimeselector"
	"github.com/sgl-project/ome/pkg/utils"
	"github.com/sgl-project/ome/pkg/webhook/admission/benchmark"
	"github.com/sgl-project/ome/pkg/webhook/admission/isvc"
	"github.com/sgl-project/ome/pkg/webhook/admission/pod"
	"github.com/sgl-project/ome/pkg/webhook/admission/servingruntime"
)

var setupLog = ctrl.Log.WithName("setup")

func main() {
	var metricsAddr, probeAddr, webhookHost, certDir string
	var webhookPort int
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-addr", "127.0.0.1:8081", "The address the probe endpoint binds to.")
	flag.StringVar(&webhookHost, "webhook-host", "127.0.0.1", "The address the webhook server binds to.")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "The port the webhook server binds to.")
	flag.StringVar(&certDir, "cert-dir", "", "The directory with the webhook server's tls.crt and tls.key.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err := run(metricsAddr, probeAddr, webhookHost, webhookPort, certDir); err != nil {
		setupLog.Error(err, "ome-manager failed")
		os.Exit(1)
	}
}

func run(metricsAddr, probeAddr, webhookHost string, webhookPort int, certDir string) error {
	// The schemes OME's manager registers unconditionally; LWS is optional there (registered when its CRD is
	// installed) and so it is here.
	scheme := runtime.NewScheme()
	utilruntime.Must(v1beta1.AddToScheme(scheme))
	utilruntime.Must(schedulerpluginsv1alpha1.AddToScheme(scheme))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(kueuev1beta1.AddToScheme(scheme))

	cfg := ctrl.GetConfigOrDie()
	clientSet, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the client set: %w", err)
	}
	http11 := []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: metricsAddr},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: webhookHost, Port: webhookPort, CertDir: certDir, TLSOpts: http11,
		}),
		HealthProbeBindAddress: probeAddr,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	// OME's own configuration: the inferenceservice-config ConfigMap in OME's namespace.
	deployConfig, err := controllerconfig.NewDeployConfig(clientSet)
	if err != nil {
		return fmt.Errorf("reading the deploy configuration: %w", err)
	}
	ingressConfig, err := controllerconfig.NewIngressConfig(clientSet)
	if err != nil {
		return fmt.Errorf("reading the ingress configuration: %w", err)
	}
	found, err := utils.IsCrdAvailable(cfg, lws.SchemeGroupVersion.String(), constants.LWSKind)
	if err != nil {
		return fmt.Errorf("looking for the LeaderWorkerSet CRD: %w", err)
	}
	if found {
		utilruntime.Must(lws.AddToScheme(mgr.GetScheme()))
	}

	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: clientSet.CoreV1().Events("")})
	if err := (&isvccontroller.InferenceServiceReconciler{
		Client:    mgr.GetClient(),
		Clientset: clientSet,
		Log:       ctrl.Log.WithName("InferenceService"),
		Scheme:    mgr.GetScheme(),
		Recorder:  broadcaster.NewRecorder(mgr.GetScheme(), v1.EventSource{Component: "v1beta1Controllers"}),
	}).SetupWithManager(mgr, deployConfig, ingressConfig); err != nil {
		return fmt.Errorf("setting up the InferenceService controller: %w", err)
	}

	hooks := mgr.GetWebhookServer()
	decoder := admission.NewDecoder(mgr.GetScheme())
	hooks.Register("/mutate-pods", &webhook.Admission{
		Handler: &pod.Mutator{Client: mgr.GetClient(), Clientset: clientSet, Decoder: decoder},
	})
	hooks.Register("/validate-ome-io-v1beta1-clusterservingruntime", &webhook.Admission{
		Handler: &servingruntime.ClusterServingRuntimeValidator{Client: mgr.GetClient(), Decoder: decoder},
	})
	hooks.Register("/validate-ome-io-v1beta1-servingruntime", &webhook.Admission{
		Handler: &servingruntime.ServingRuntimeValidator{Client: mgr.GetClient(), Decoder: decoder},
	})
	hooks.Register("/validate-ome-io-v1beta1-benchmarkjob", &webhook.Admission{
		Handler: &benchmark.BenchmarkJobValidator{Client: mgr.GetClient(), Decoder: decoder},
	})
	if err := ctrl.NewWebhookManagedBy(mgr).
		For(&v1beta1.InferenceService{}).
		WithDefaulter(&isvc.InferenceServiceDefaulter{Client: mgr.GetClient(), ClientSet: clientSet}).
		WithValidator(&isvc.InferenceServiceValidator{Client: mgr.GetClient(), RuntimeSelector: runtimeselector.New(mgr.GetClient())}).
		Complete(); err != nil {
		return fmt.Errorf("setting up the InferenceService webhooks: %w", err)
	}

	started := func(req *http.Request) error { return mgr.GetWebhookServer().StartedChecker()(req) }
	if err := mgr.AddHealthzCheck("healthz", started); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", started); err != nil {
		return err
	}
	setupLog.Info("starting OME's InferenceService controller and webhooks")
	return mgr.Start(signals.SetupSignalHandler())
}
