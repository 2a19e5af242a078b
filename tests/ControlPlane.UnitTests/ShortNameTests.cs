using ControlPlane.Operator.Crds;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl get tnt` must not depend on which operator a cluster happens to run: a short name that
/// another widely installed project also registers is resolved by API group priority, so on a
/// cluster with both it silently lists the other project's objects (or ours, in theirs' scripts).
/// </summary>
public sealed class ShortNameTests
{
    /// <summary>
    /// Short names (and the resource names kubectl also matches) registered by what platform teams
    /// commonly run next to us, from each project's published CRDs.
    /// </summary>
    static readonly IReadOnlyDictionary<string, string> Taken = new Dictionary<string, string>
    {
        // Capsule (capsule.clastix.io)
        ["tnt"] = "Capsule Tenant",
        // Argo Rollouts (argoproj.io)
        ["ro"] = "Argo Rollouts Rollout", ["rollout"] = "Argo Rollouts Rollout", ["rollouts"] = "Argo Rollouts Rollout",
        ["exp"] = "Argo Rollouts Experiment", ["ar"] = "Argo Rollouts AnalysisRun", ["at"] = "Argo Rollouts AnalysisTemplate",
        ["cat"] = "Argo Rollouts ClusterAnalysisTemplate",
        // Argo CD (argoproj.io)
        ["app"] = "Argo CD Application", ["apps"] = "Argo CD Application", ["appproj"] = "Argo CD AppProject",
        ["appprojs"] = "Argo CD AppProject", ["appset"] = "Argo CD ApplicationSet", ["appsets"] = "Argo CD ApplicationSet",
        // Flux (*.toolkit.fluxcd.io)
        ["ks"] = "Flux Kustomization", ["hr"] = "Flux HelmRelease", ["hc"] = "Flux HelmChart",
        ["helmrepo"] = "Flux HelmRepository", ["gitrepo"] = "Flux GitRepository", ["ocirepo"] = "Flux OCIRepository",
        // cert-manager (cert-manager.io)
        ["cert"] = "cert-manager Certificate", ["certs"] = "cert-manager Certificate",
        ["cr"] = "cert-manager CertificateRequest", ["crs"] = "cert-manager CertificateRequest",
        // Kubernetes itself
        ["cm"] = "ConfigMap", ["cs"] = "ComponentStatus", ["csr"] = "CertificateSigningRequest", ["crd"] = "CustomResourceDefinition",
        ["crds"] = "CustomResourceDefinition", ["ds"] = "DaemonSet", ["deploy"] = "Deployment", ["ep"] = "Endpoints", ["ev"] = "Event",
        ["hpa"] = "HorizontalPodAutoscaler", ["ing"] = "Ingress", ["limits"] = "LimitRange", ["netpol"] = "NetworkPolicy",
        ["no"] = "Node", ["ns"] = "Namespace", ["pc"] = "PriorityClass", ["pdb"] = "PodDisruptionBudget", ["po"] = "Pod",
        ["pv"] = "PersistentVolume", ["pvc"] = "PersistentVolumeClaim", ["quota"] = "ResourceQuota", ["rc"] = "ReplicationController",
        ["rs"] = "ReplicaSet", ["sa"] = "ServiceAccount", ["sc"] = "StorageClass", ["sts"] = "StatefulSet", ["svc"] = "Service",
    };

    [Fact]
    public void NoShortName_CollidesWithOneAnotherProjectRegisters()
    {
        var collisions = CrdGenerator.GenerateAll()
            .SelectMany(crd => (crd.Spec.Names.ShortNames ?? []).Select(name => (crd.Spec.Names.Kind, Name: name)))
            .Where(s => Taken.ContainsKey(s.Name))
            .Select(s => $"{s.Kind}: `{s.Name}` is {Taken[s.Name]}'s")
            .ToList();
        Assert.True(collisions.Count == 0, "short names that collide:\n  " + string.Join("\n  ", collisions));
    }

    [Fact]
    public void ShortNames_AreUniqueAmongOurKinds_AndEveryKindIsInTheControlplaneCategory()
    {
        var crds = CrdGenerator.GenerateAll();
        var names = crds.SelectMany(c => c.Spec.Names.ShortNames ?? []).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(crds, crd => Assert.Equal(["controlplane"], crd.Spec.Names.Categories));
    }
}
