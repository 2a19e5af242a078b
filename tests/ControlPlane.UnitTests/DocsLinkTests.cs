using System.Text.RegularExpressions;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>
/// Every relative link in README.md and docs/ points at a file or folder of this repository,
/// so the docs read the same in every clone (no link into a machine's own paths). No servers.
/// </summary>
public sealed partial class DocsLinkTests
{
    [Fact]
    public void EveryRelativeMarkdownLink_ResolvesInsideTheRepository()
    {
        var root = Repository.Root();
        var pages = Directory.GetFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories)
            .Append(Path.Combine(root, "README.md"))
            .Append(Path.Combine(root, "bench", "README.md"))
            .Append(Path.Combine(root, "chaos", "README.md"))
            .ToList();
        var broken = new List<string>();
        var links = 0;
        foreach (var page in pages)
        {
            foreach (var target in RelativeLinks(File.ReadAllText(page)))
            {
                links++;
                var (file, anchor) = target.Split('#') is [var f, var a] ? (f, a) : (target, null);
                var path = file.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, Uri.UnescapeDataString(file)));
                var inside = path == root || path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
                var resolves = inside && (File.Exists(path) || Directory.Exists(path));
                // An anchor into a markdown page must name one of its headings, as GitHub derives them.
                if (resolves && anchor is not null && path.EndsWith(".md", StringComparison.Ordinal)) resolves = Anchors(File.ReadAllText(path)).Contains(anchor);
                if (!resolves) broken.Add($"{Path.GetRelativePath(root, page)}: {target}");
            }
        }

        Assert.True(links > 20, $"only {links} relative links found: the scan is broken");
        Assert.True(broken.Count == 0, "links that do not resolve inside the repository:\n" + string.Join("\n", broken));
    }

    [Fact]
    public void RelativeLinks_SkipsUrlsAndCode_KeepsAnchors()
    {
        const string text = "[a](docs/a.md#x) \\[x\\](not/a/link) [b](https://x.io/b) [c](#top) `[d](no.md)` ![e](img/e.png)\n```\n[f](no.md)\n```\n[g]: ref/g.md\n";
        Assert.Equal(["docs/a.md#x", "#top", "img/e.png", "ref/g.md"], RelativeLinks(text));
    }

    [Fact]
    public void Anchors_AreGitHubHeadingSlugs()
    {
        const string text = "# Two commands\n### What `make tools` installs\n```\n# not a heading\n```\n## Rollback.\n";
        Assert.Equal(["rollback", "two-commands", "what-make-tools-installs"], Anchors(text).Order(StringComparer.Ordinal).ToArray());
    }

    /// <summary>Relative targets of inline links, images and reference definitions, outside code.</summary>
    public static IReadOnlyList<string> RelativeLinks(string markdown)
    {
        var withoutCode = InlineCode().Replace(FencedCode().Replace(markdown, ""), "");
        return InlineLink().Matches(withoutCode).Select(m => m.Groups[1].Value)
            .Concat(ReferenceLink().Matches(withoutCode).Select(m => m.Groups[1].Value))
            .Where(t => !Scheme().IsMatch(t))
            .ToList();
    }

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.</summary>
    public static IReadOnlySet<string> Anchors(string markdown) =>
        Heading().Matches(FencedCode().Replace(markdown, "")).Select(m => string.Concat(m.Groups[1].Value.Trim().ToLowerInvariant()
                .Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_'))
            .Replace(' ', '-'))
            .ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"^```.*?^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedCode();

    [GeneratedRegex(@"`[^`\n]*`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"(?<!\\)\]\(\s*<?([^)\s>]+)>?(?:\s+""[^""]*"")?\s*\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"^\s{0,3}\[[^\]]+\]:\s*(\S+)", RegexOptions.Multiline)]
    private static partial Regex ReferenceLink();

    [GeneratedRegex(@"^#{1,6}\s+(.+?)\s*#*\s*$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.-]*:")]
    private static partial Regex Scheme();
}
