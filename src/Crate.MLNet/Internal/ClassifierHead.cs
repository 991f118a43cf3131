using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace Crate.MLNet.Internal;

/// <summary>
/// The end of a classifier chain: ML.NET's own multiclass prediction transformer over the network's logits, so <c>Score</c>
/// (the softmax of the logits) carries the class names as slot names and <c>PredictedLabel</c> is a key whose values are
/// the class names, exactly as an ML.NET trainer's output, and both survive <c>mlContext.Model.Save</c>/<c>Load</c> in a
/// process that has only ML.NET.
/// </summary>
/// <remarks>
/// The predictor is a maximum-entropy model, <c>softmax(W x + b)</c>, with <c>W = I</c> and <c>b = 0</c>, so its scores are the
/// network's probabilities. ML.NET builds these types only through internal constructors (its trainers call them); they are
/// reached by reflection, and a version of ML.NET without them fails with a message saying so rather than silently losing the names.
/// The label column of the training schema is synthetic: it exists only to carry the class names, as a trainer's label would.
/// </remarks>
internal static class ClassifierHead
{
    /// <summary>The synthetic training label column whose key values name the classes.</summary>
    internal const string LabelColumn = "crate.label";

    private const BindingFlags Internal = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;


    /// <summary>
    /// A transformer that reads the logits vector <paramref name="logitsColumn"/> and writes <paramref name="scoreColumn"/> (probabilities, slot
    /// names <paramref name="classNames"/>) and <paramref name="predictedLabelColumn"/> (key k+1 = class k, key values the names).
    /// </summary>
    public static MulticlassPredictionTransformer<MaximumEntropyModelParameters> Create(IHostEnvironment environment, IReadOnlyList<string> classNames,
        string logitsColumn, string scoreColumn, string predictedLabelColumn)
    {
        int k = classNames.Count;
        var identity = Enumerable.Range(0, k).Select(c => new VBuffer<float>(k, Enumerable.Range(0, k).Select(j => j == c ? 1f : 0f).ToArray())).ToArray();
        var model = (MaximumEntropyModelParameters)Invoke(typeof(MaximumEntropyModelParameters),
            [typeof(IHostEnvironment), typeof(VBuffer<float>[]), typeof(float[]), typeof(int), typeof(int), typeof(string[]), typeof(ModelStatisticsBase)],
            [environment, identity, new float[k], k, k, classNames.ToArray(), null]);
        return (MulticlassPredictionTransformer<MaximumEntropyModelParameters>)Invoke(typeof(MulticlassPredictionTransformer<MaximumEntropyModelParameters>),
            [typeof(IHostEnvironment), typeof(MaximumEntropyModelParameters), typeof(DataViewSchema), typeof(string), typeof(string), typeof(string), typeof(string)],
            [environment, model, TrainingSchema(classNames, logitsColumn), logitsColumn, LabelColumn, scoreColumn, predictedLabelColumn]);
    }

    /// <summary>The schema a trainer would have seen: the logits as features and a key label whose values are the class names.</summary>
    private static DataViewSchema TrainingSchema(IReadOnlyList<string> classNames, string logitsColumn)
    {
        var names = new VBuffer<ReadOnlyMemory<char>>(classNames.Count, classNames.Select(n => n.AsMemory()).ToArray());
        ValueGetter<VBuffer<ReadOnlyMemory<char>>> getNames = (ref VBuffer<ReadOnlyMemory<char>> value) => names.CopyTo(ref value);
        var keyValues = new DataViewSchema.Annotations.Builder();
        keyValues.Add("KeyValues", new VectorDataViewType(TextDataViewType.Instance, classNames.Count), getNames);
        var schema = new DataViewSchema.Builder();
        schema.AddColumn(LabelColumn, new KeyDataViewType(typeof(uint), classNames.Count), keyValues.ToAnnotations());
        schema.AddColumn(logitsColumn, new VectorDataViewType(NumberDataViewType.Single, classNames.Count));
        return schema.ToSchema();
    }

    /// <summary>Calls <paramref name="type"/>'s (internal) constructor taking <paramref name="parameters"/>.</summary>
    /// <exception cref="MissingMethodException">This ML.NET has no such constructor.</exception>
    private static object Invoke(Type type, Type[] parameters, object?[] arguments)
    {
        var constructor = type.GetConstructor(Internal, parameters)
            ?? throw new MissingMethodException($"This ML.NET version has no internal {type.Name}({string.Join(", ", parameters.Select(p => p.Name))}); " +
                                                "Crate.MLNet is built for ML.NET 5 and needs it to give Score its class names.");
        try
        {
            return constructor.Invoke(arguments);
        }
        catch (TargetInvocationException e) when (e.InnerException != null)
        {
            throw e.InnerException;
        }
    }
}
