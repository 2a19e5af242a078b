using ControlPlane.Operator.Configuration;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Issue 22, class 1 across kinds: a plane or evidence URL is under a configured prefix as a parsed URL, not as a string.</summary>
public sealed class UrlPrefixesTests
{
    [Theory]
    [InlineData("https://plane.example.com/api/v1/deploy", true)]
    [InlineData("https://PLANE.example.com/api", true)]
    [InlineData("https://plane.example.com.attacker.net/api/", false)]
    [InlineData("https://plane.example.com:8443/api/", false)]
    [InlineData("http://plane.example.com/api/", false)]
    [InlineData("https://plane.example.com/api-admin/", false)]
    [InlineData("https://plane.example.com/api/../admin/", false)]
    [InlineData("https://plane.example.com/api/%2e%2e/admin/", false)]
    [InlineData("https://plane.example.com\\@evil.net/api/", false)]
    [InlineData("https://user@plane.example.com/api/", false)]
    [InlineData("not a url", false)]
    public void APrefix_MatchesSchemeHostPortAndWholePathSegments(string url, bool allowed) =>
        Assert.Equal(allowed, UrlPrefixes.Allows(url, ["https://plane.example.com/api"]));

    [Fact]
    public void AHostPrefix_WithoutPath_AllowsEveryPathOnThatOriginOnly()
    {
        Assert.True(UrlPrefixes.Allows("http://127.0.0.1:4000/metadata/", ["http://127.0.0.1:4000/"]));
        Assert.False(UrlPrefixes.Allows("http://127.0.0.1:1/metadata/", ["http://127.0.0.1:4000/"]));
        Assert.False(UrlPrefixes.Allows("https://x.example.com/", []));
        // A string prefix without a slash would let a look-alike host and another port through.
        Assert.False(UrlPrefixes.Allows("https://plane.example.com.attacker.net/", ["https://plane.example.com"]));
        Assert.False(UrlPrefixes.Allows("https://plane.example.com:8443/", ["https://plane.example.com"]));
    }
}
