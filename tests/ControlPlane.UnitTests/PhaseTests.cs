using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Crds;
using Xunit;
using k8s.Models;
using k8s;

namespace ControlPlane.Tests;

/// <summary>
/// Typed phases are stored exactly as the strings they replaced: KubernetesJson writes and reads each
/// member by its name, the CRD's enum is the members in order, and a string this build does not know
/// (a newer operator wrote it) reads as Unknown instead of failing the list or watch that carries it.
/// </summary>
public sealed class PhaseTests
{
    /// <summary>Every enum-typed property of every kind's status, found by walking the API types.</summary>
    static IEnumerable<(string Path, PropertyInfo Property)> PhaseProperties()
    {
        var seen = new HashSet<Type>();
        IEnumerable<(string, PropertyInfo)> Walk(string path, Type type)
        {
            if (!seen.Add(type)) yield break;
            foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                var t = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>)) t = t.GetGenericArguments()[0];
                if (t.IsEnum) yield return ($"{path}.{CrdGenerator.JsonName(p)}", p);
                else if (t.IsClass && t.Namespace == typeof(ApiKinds).Namespace)
                {
                    foreach (var found in Walk($"{path}.{CrdGenerator.JsonName(p)}", t)) yield return found;
                }
            }
        }

        return ApiKinds.All.SelectMany(k => Walk(ApiKinds.KindOf(k), k.GetProperty("Status")!.PropertyType));
    }

    [Fact]
    public void EveryPhaseEnum_HasUnknownAtZero_AndTheNameConverter()
    {
        var phases = PhaseProperties().ToList();
        // Tenant, Workspace, Exposure, Rollout (+ rings), DeploymentIntent (+ rings), BackupPlan's last backup, Backup, Restore, Application, Exception, AccessRequest, BreakGlass, NotificationChannel.
        Assert.Equal(15, phases.Count);
        foreach (var (path, property) in phases)
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType)!;
            Assert.Equal("Unknown", Enum.GetName(type, 0));
            // On the property too: KubernetesJson's own enum converter would otherwise win and throw on an unknown name.
            Assert.Equal(typeof(PhaseConverter<>).MakeGenericType(type), property.GetCustomAttribute<JsonConverterAttribute>()?.ConverterType);
            Assert.Equal(typeof(PhaseConverter<>).MakeGenericType(type), type.GetCustomAttribute<JsonConverterAttribute>()?.ConverterType);
            Assert.DoesNotContain("Unknown", Phases.Values(type));
            Assert.True(Phases.Values(type).Count == Enum.GetValues(type).Length - 1, path);
        }
    }

    [Fact]
    public void TheCrdEnum_IsTheMembersInOrder_WithoutUnknown()
    {
        var byKind = CrdGenerator.GenerateAll().ToDictionary(c => c.Spec.Names.Kind, c => c.Spec.Versions[0].Schema.OpenAPIV3Schema);
        foreach (var (path, property) in PhaseProperties())
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType)!;
            var parts = path.Split('.');
            var schema = byKind[parts[0]].Properties["status"];
            foreach (var part in parts.Skip(1))
            {
                if (schema.Type == "array") schema = (V1JSONSchemaProps)schema.Items;
                schema = schema.Properties[part];
            }

            Assert.Equal("string", schema.Type);
            Assert.Equal(Phases.Values(type), schema.EnumProperty.Select(v => (string)v).ToList());
        }

        // What the contract names, exactly as before the phases were typed (a spot check of the order).
        Assert.Equal(["Pending", "Progressing", "Paused", "Succeeded", "RolledBack", "Failed"], Phases.Values(typeof(RolloutPhase)));
        Assert.Equal(["Pending", "AwaitingApproval", "Progressing", "Soaking", "Succeeded", "Failed", "RolledBack"], Phases.Values(typeof(RingPhase)));
    }

    [Fact]
    public void KubernetesJson_WritesAndReadsEveryPhase_AsItsName()
    {
        RoundTrip<TenantPhase, Tenant>(p => new Tenant { Status = new TenantStatus { Phase = p } }, t => t.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<WorkspacePhase, Workspace>(p => new Workspace { Status = new WorkspaceStatus { Phase = p } }, w => w.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<ExposurePhase, Exposure>(p => new Exposure { Status = new ExposureStatus { Phase = p } }, e => e.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<RolloutPhase, Rollout>(p => new Rollout { Status = new RolloutStatus { Phase = p } }, r => r.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<RingPhase, Rollout>(p => new Rollout { Status = new RolloutStatus { Rings = [new RingStatus { Name = "a", Phase = p }] } },
            r => r.Status?.Rings?[0].Phase, j => j["status"]!["rings"]![0]!["phase"]);
        RoundTrip<IntentPhase, DeploymentIntent>(p => new DeploymentIntent { Status = new DeploymentIntentStatus { Phase = p } }, i => i.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<IntentRingPhase, DeploymentIntent>(p => new DeploymentIntent { Status = new DeploymentIntentStatus { Rings = [new IntentRingStatus { Name = "a", Phase = p }] } },
            i => i.Status?.Rings?[0].Phase, j => j["status"]!["rings"]![0]!["phase"]);
        RoundTrip<BackupPhase, Backup>(p => new Backup { Status = new BackupStatus { Phase = p } }, b => b.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<BackupPhase, BackupPlan>(p => new BackupPlan { Status = new BackupPlanStatus { LastBackup = new BackupRecord { Name = "b", Phase = p } } },
            b => b.Status?.LastBackup?.Phase, j => j["status"]!["lastBackup"]!["phase"]);
        RoundTrip<RestorePhase, Restore>(p => new Restore { Status = new RestoreStatus { Phase = p } }, r => r.Status?.Phase, j => j["status"]!["phase"]);
        RoundTrip<ExceptionPhase, SecurityException>(p => new SecurityException { Status = new SecurityExceptionStatus { Phase = p } }, e => e.Status?.Phase, j => j["status"]!["phase"]);

        // No phase: no field, as before (null is left out, not written as "Unknown").
        Assert.Null(JsonNode.Parse(KubernetesJson.Serialize(new Workspace { Status = new WorkspaceStatus() }))!["status"]!["phase"]);
        Assert.Null(KubernetesJson.Deserialize<Workspace>("""{"status":{"phase":null}}""").Status!.Phase);
    }

    static void RoundTrip<TPhase, TObject>(Func<TPhase, TObject> make, Func<TObject, TPhase?> read, Func<JsonNode, JsonNode?> field)
        where TPhase : struct, Enum
    {
        foreach (var name in Phases.Values(typeof(TPhase)))
        {
            var phase = Enum.Parse<TPhase>(name);
            var json = KubernetesJson.Serialize(make(phase));
            Assert.Equal(name, field(JsonNode.Parse(json)!)!.GetValue<string>());
            Assert.Equal(phase, read(KubernetesJson.Deserialize<TObject>(json)));
        }
    }

    [Fact]
    public void APhaseThisBuildDoesNotKnow_ReadsAsUnknown_AndTheRestOfTheObjectSurvives()
    {
        // A newer operator's phases (its CRD allows them), a wrong case, a number: none breaks the read.
        var rollout = KubernetesJson.Deserialize<Rollout>("""
            {"apiVersion":"controlplane.io/v1alpha1","kind":"Rollout","metadata":{"name":"r","namespace":"acme-dev"},
             "spec":{"target":{"deployment":"web"},"rings":[{"name":"a"},{"name":"b"},{"name":"c"}]},
             "status":{"phase":"Hibernating","observedGeneration":4,
                       "rings":[{"name":"a","phase":"Warming"},{"name":"b","phase":"soaking"},{"name":"c","phase":3},{"name":"d","phase":{"x":1}},{"name":"e","phase":"Soaking"}]}}
            """);
        Assert.Equal(RolloutPhase.Unknown, rollout.Status!.Phase);
        Assert.Equal(4, rollout.Status.ObservedGeneration);
        Assert.Equal("web", rollout.Spec.Target.Deployment);
        Assert.Equal([RingPhase.Unknown, RingPhase.Unknown, RingPhase.Unknown, RingPhase.Unknown, RingPhase.Soaking], rollout.Status.Rings!.Select(r => r.Phase!.Value));
        Assert.Equal(["a", "b", "c", "d", "e"], rollout.Status.Rings!.Select(r => r.Name));
        Assert.Equal(WorkspacePhase.Unknown, KubernetesJson.Deserialize<Workspace>("""{"status":{"phase":"Hibernating"}}""").Status!.Phase);
        Assert.Equal(default, PhaseConverter<IntentPhase>.Parse("Ready,Failed"));
        Assert.Equal(default, PhaseConverter<IntentPhase>.Parse("1"));
    }

    [Fact]
    public void EveryConditionTypeAndReasonConstant_IsTheCamelCaseStringOfItsName_AndEveryKindsKubeKindIsItsKind()
    {
        // The values are the API (tests, alerts and users match on them): a constant named X is "X", so
        // a rename shows in review as a change of the string, and no two names share a value.
        var classes = typeof(ApiKinds).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(ApiKinds).Namespace && t.IsAbstract && t.IsSealed
                        && (t.Name.EndsWith("Reasons", StringComparison.Ordinal) || t.Name.EndsWith("Conditions", StringComparison.Ordinal)))
            .ToList();
        Assert.Contains(classes, t => t.Name == "RolloutReasons");
        Assert.Contains(classes, t => t.Name == "WorkspaceConditions");
        foreach (var c in classes)
        {
            var constants = c.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).ToList();
            Assert.NotEmpty(constants);
            foreach (var f in constants) Assert.Equal(f.Name, (string)f.GetRawConstantValue()!);
        }

        foreach (var kind in ApiKinds.All)
        {
            var kubeKind = (string)kind.GetField("KubeKind")!.GetRawConstantValue()!;
            Assert.Equal(kind.GetCustomAttribute<KubernetesEntityAttribute>()!.Kind, kubeKind);
            Assert.Equal(kubeKind, ((IKubernetesObject)Activator.CreateInstance(kind)!).Kind);
        }
    }

    [Fact]
    public void Unknown_IsWrittenAsUnknown_WhichTheCrdRefuses_SoANewerPhaseIsNeverOverwritten()
    {
        // The status write serialises the object as read (ObjectWriter): that must not throw; the API
        // server then refuses a status carrying "Unknown" (not in the CRD's enum) rather than storing it.
        var json = KubernetesJson.Serialize(new Workspace { Status = new WorkspaceStatus { Phase = WorkspacePhase.Unknown } });
        Assert.Equal("Unknown", JsonNode.Parse(json)!["status"]!["phase"]!.GetValue<string>());
        var phase = CrdGenerator.Generate(typeof(Workspace)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Properties["phase"];
        Assert.DoesNotContain("Unknown", phase.EnumProperty.Select(v => (string)v));
    }
}
