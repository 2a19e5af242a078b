using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Crds;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>
/// `kubectl explain` answers for every field: each property of every kind's schema (spec, status,
/// nested objects, list items, conditions) has a description, generated from the C# doc comments.
/// </summary>
public sealed class CrdDescriptionTests
{
    /// <summary>
    /// Kinds skipped for now: their API types are being changed in another branch (Restore.cs) and
    /// are to be described when their branch merges. Remove a kind from this list once its fields
    /// carry doc comments.
    /// </summary>
    static readonly IReadOnlySet<string> NotYetDescribed = new HashSet<string>
    {
        
    };

    /// <summary>Every schema path (kind.spec.a.b, list items as []) whose description is empty.</summary>
    static IEnumerable<string> Undescribed(string path, V1JSONSchemaProps schema)
    {
        // metadata is the API server's own (ObjectMeta): a CRD may not describe it.
        if (string.IsNullOrWhiteSpace(schema.Description) && !path.EndsWith(".metadata", StringComparison.Ordinal)) yield return path;
        foreach (var (name, child) in schema.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
        {
            foreach (var missing in Undescribed($"{path}.{name}", child)) yield return missing;
        }

        // Items of a list: their fields are what explain lists under the list's own description.
        if (schema.Items is V1JSONSchemaProps items)
        {
            foreach (var (name, child) in items.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
            {
                foreach (var missing in Undescribed($"{path}[].{name}", child)) yield return missing;
            }
        }

        if (schema.AdditionalProperties is V1JSONSchemaProps values)
        {
            foreach (var (name, child) in values.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
            {
                foreach (var missing in Undescribed($"{path}{{}}.{name}", child)) yield return missing;
            }
        }
    }

    [Fact]
    public void EveryFieldOfEveryKind_HasADescription()
    {
        var missing = CrdGenerator.GenerateAll()
            .Where(crd => !NotYetDescribed.Contains(crd.Spec.Names.Kind))
            .SelectMany(crd => Undescribed(crd.Spec.Names.Kind, crd.Spec.Versions[0].Schema.OpenAPIV3Schema))
            .ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} field(s) lack a description (add a /// <summary> to the property):\n  " + string.Join("\n  ", missing));
    }

    [Fact]
    public void ADescription_CarriesTheDefaultAndTheConstraints()
    {
        var workspace = CrdGenerator.Generate(typeof(Workspace)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];
        var deletionPolicy = workspace.Properties["database"].Properties["deletionPolicy"].Description;
        Assert.Contains("Default: \"Retain\".", deletionPolicy);
        Assert.Contains("One of: Retain, Delete.", deletionPolicy);
        var tenant = CrdGenerator.Generate(typeof(Tenant)).Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];
        Assert.Contains("Range: 0 to 100000.", tenant.Properties["quota"].Properties["maxWorkspaces"].Description);
        Assert.Contains("Pattern: " + Patterns.DnsLabel, tenant.Properties["region"].Description);
        Assert.Contains("Required.", tenant.Properties["region"].Description);
    }

    /// <summary>
    /// `kubectl get` reads alike on every kind: Tenant (where the kind names one), Phase (where it has
    /// one), Ready, then the kind's key figures, Age last. The same kinds wait for their branch.
    /// </summary>
    [Fact]
    public void PrinterColumns_AreConsistentAcrossKinds()
    {
        foreach (var crd in CrdGenerator.GenerateAll().Where(crd => !NotYetDescribed.Contains(crd.Spec.Names.Kind)))
        {
            var names = crd.Spec.Versions[0].AdditionalPrinterColumns.Select(c => c.Name).ToList();
            var expectedStart = new[] { "Tenant", "Phase", "Ready" }.Where(names.Contains).ToList();
            Assert.True(names.Take(expectedStart.Count).SequenceEqual(expectedStart), $"{crd.Spec.Names.Kind}: columns {string.Join(", ", names)} should start with {string.Join(", ", expectedStart)}");
            Assert.Contains("Ready", names);
            Assert.True(names.Count > expectedStart.Count + 1, $"{crd.Spec.Names.Kind}: no key figure between Ready and Age");
            Assert.Equal("Age", names[^1]);
        }
    }
}
