using ControlPlane.Operator.Crds;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Tests;

/// <summary>
/// docs/api/ is the generated reference of the CRDs: it must be what the generator writes today,
/// and every field path of the committed crds/*.yaml must have its row. No servers.
/// </summary>
public sealed class ApiReferenceTests
{
    [Fact]
    public void DocsApi_MatchesWhatTheGeneratorWrites()
    {
        var dir = Path.Combine(Repository.Root(), ApiReference.Folder);
        var expected = ApiReference.RenderAll(CrdGenerator.GenerateAll());
        var actual = Directory.GetFiles(dir, "*.md").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (file, text) in expected)
        {
            Assert.True(actual[file] == text, $"docs/api/{file} differs from the CRDs: run `make manifests` and commit the result");
        }
    }

    [Fact]
    public void EveryFieldPathOfTheCommittedCrds_HasItsRowInDocsApi()
    {
        // Walks the YAML itself (not ApiReference's own walk), so a field the generator skipped is caught.
        var root = Repository.Root();
        var crdFiles = Directory.GetFiles(Path.Combine(root, "crds"), "*.yaml");
        Assert.NotEmpty(crdFiles);
        var missing = new List<string>();
        var checkedPaths = 0;
        foreach (var file in crdFiles)
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file)) stream.Load(reader);
            var crd = (YamlMappingNode)stream.Documents.Single().RootNode;
            var spec = Map(crd, "spec")!;
            var singular = Scalar(Map(spec, "names")!, "singular");
            var page = Path.Combine(root, ApiReference.Folder, singular + ".md");
            Assert.True(File.Exists(page), $"{ApiReference.Folder}/{singular}.md is missing for {Path.GetFileName(file)}");
            var text = File.ReadAllText(page);
            foreach (var version in ((YamlSequenceNode)spec.Children[new YamlScalarNode("versions")]).Children.Cast<YamlMappingNode>())
            {
                var schema = Map(Map(version, "schema")!, "openAPIV3Schema")!;
                foreach (var path in Paths(schema, ""))
                {
                    checkedPaths++;
                    if (!text.Contains($"| `{path}` |", StringComparison.Ordinal)) missing.Add($"{singular}.{path}");
                }
            }
        }

        Assert.True(checkedPaths > 300, $"only {checkedPaths} field paths found in crds/: the walk is broken");
        Assert.True(missing.Count == 0, "fields without a row in docs/api (run `make manifests`):\n" + string.Join("\n", missing));
    }

    // kubectl explain paths: object properties, descending through array items and map values without a segment.
    static IEnumerable<string> Paths(YamlMappingNode schema, string prefix)
    {
        if (Map(schema, "items") is { } items) return Paths(items, prefix);
        if (Map(schema, "additionalProperties") is { } values) return Paths(values, prefix);
        if (Map(schema, "properties") is not { } properties) return [];
        return properties.Children.SelectMany(p =>
        {
            var path = prefix.Length == 0 ? ((YamlScalarNode)p.Key).Value! : $"{prefix}.{((YamlScalarNode)p.Key).Value}";
            return Paths((YamlMappingNode)p.Value, path).Prepend(path);
        });
    }

    static YamlMappingNode? Map(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value as YamlMappingNode : null;

    static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node.Children[new YamlScalarNode(key)]).Value!;
}
