namespace ControlPlane.Api;

// Attributes the CRD generator reads. They describe the OpenAPI v3 schema the API server enforces,
// so that bad input is refused at admission with a message naming the field.

[AttributeUsage(AttributeTargets.Property)]
public sealed class RequiredAttribute : Attribute;

[AttributeUsage(AttributeTargets.Property)]
public sealed class DescriptionAttribute(string text) : Attribute
{
    public string Text { get; } = text;
}

[AttributeUsage(AttributeTargets.Property)]
public sealed class EnumAttribute(params string[] values) : Attribute
{
    public IReadOnlyList<string> Values { get; } = values;
}

[AttributeUsage(AttributeTargets.Property)]
public sealed class PatternAttribute(string regex) : Attribute
{
    public string Regex { get; } = regex;
}

[AttributeUsage(AttributeTargets.Property)]
public sealed class RangeAttribute(double minimum, double maximum) : Attribute
{
    public double Minimum { get; } = minimum;
    public double Maximum { get; } = maximum;
}

[AttributeUsage(AttributeTargets.Property)]
public sealed class LengthAttribute(int minimum, int maximum = -1) : Attribute
{
    public int Minimum { get; } = minimum;
    public int Maximum { get; } = maximum;
}

[AttributeUsage(AttributeTargets.Property)]
public sealed class ItemsAttribute(int minimum, int maximum = -1) : Attribute
{
    public int Minimum { get; } = minimum;
    public int Maximum { get; } = maximum;
}

/// <summary>A default written into the CRD schema, so the API server applies it.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DefaultAttribute(object value) : Attribute
{
    public object Value { get; } = value;
}

/// <summary>A list whose items are unique scalars (x-kubernetes-list-type: set).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ListSetAttribute : Attribute;

/// <summary>
/// A list of objects keyed by the given fields (x-kubernetes-list-type: map): the API server refuses
/// two items with the same key, and server-side apply merges items by it. Key fields must be required.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ListMapAttribute(params string[] keys) : Attribute
{
    public IReadOnlyList<string> Keys { get; } = keys;
}

/// <summary>A date-time string.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DateTimeFormatAttribute : Attribute;

public enum EntityScope { Cluster, Namespaced }

[AttributeUsage(AttributeTargets.Class)]
public sealed class EntityScopeAttribute(EntityScope scope) : Attribute
{
    public EntityScope Scope { get; } = scope;
}

[AttributeUsage(AttributeTargets.Class)]
public sealed class ShortNameAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class PrinterColumnAttribute(string name, string jsonPath, string type = "string") : Attribute
{
    public string Name { get; } = name;
    public string JsonPath { get; } = jsonPath;
    public string Type { get; } = type;
    public int Priority { get; init; }
}
