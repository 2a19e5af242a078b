using System.Text.RegularExpressions;
using ControlPlane.Operator.Crds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

/// <summary>What `kubectl get` prints is read by people: every column is a scalar (a list or object prints as raw JSON).</summary>
public sealed class PrinterColumnTests
{
    /// <summary>The schema a printer column's JSONPath ends at, or null when it names no field.</summary>
    static V1JSONSchemaProps? Resolve(V1JSONSchemaProps root, string jsonPath)
    {
        var schema = root;
        // `.status.conditions[?(@.type=="Ready")].status` and `.spec.target.containers[*].image`: a filter or
        // wildcard picks list items, whose field is then printed (comma-joined for [*]).
        foreach (var part in Regex.Replace(jsonPath, @"\[[^\]]*\]", "").Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            if (schema.Type == "array") schema = (V1JSONSchemaProps)schema.Items;
            if (schema.Properties is null || !schema.Properties.TryGetValue(part, out var next)) return null;
            schema = next;
        }

        return schema;
    }

    [Fact]
    public void EveryPrinterColumn_NamesAScalarField_OfTheColumnsType()
    {
        var wrong = new List<string>();
        foreach (var crd in CrdGenerator.GenerateAll())
        {
            var version = crd.Spec.Versions[0];
            var root = version.Schema.OpenAPIV3Schema;
            foreach (var column in version.AdditionalPrinterColumns)
            {
                // metadata is the API server's: creationTimestamp is a date string.
                if (column.JsonPath.StartsWith(".metadata.", StringComparison.Ordinal)) continue;
                var field = Resolve(root, column.JsonPath);
                var scalar = field?.Type switch { "string" or "integer" or "number" or "boolean" => field.Type, _ => null };
                var type = column.Type switch { "date" => "string", var t => t };
                if (scalar is null || (type != scalar && !(type == "number" && scalar == "integer")))
                {
                    wrong.Add($"{crd.Spec.Names.Kind} {column.Name} ({column.JsonPath}, {column.Type}): the field is {field?.Type ?? "missing"}");
                }
            }
        }

        Assert.True(wrong.Count == 0, "printer columns that print raw JSON, or nothing:\n  " + string.Join("\n  ", wrong));
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1023, "1023 B")]
    [InlineData(1024, "1.0 KiB")]
    [InlineData(1279, "1.2 KiB")]
    [InlineData(1048575, "1.0 MiB")]
    [InlineData(12_900_000, "12.3 MiB")]
    [InlineData(5L * 1024 * 1024 * 1024 * 1024, "5.0 TiB")]
    [InlineData(long.MaxValue, "8.0 EiB")]
    public void BackupSizes_ReadInBinaryUnits(long bytes, string expected) => Assert.Equal(expected, ByteSizes.Format(bytes));
}
