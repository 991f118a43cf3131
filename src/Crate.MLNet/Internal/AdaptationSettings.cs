using Crate.Core.Model;
using Crate.Training.Adaptation;

namespace Crate.MLNet.Internal;

/// <summary>The checks the classifier and the segmentation trainer share on their adaptation options.</summary>
internal static class AdaptationSettings
{
    /// <summary>
    /// Refuses an adaptation without initial weights (anything but fine-tuning every weight adapts a pretrained trunk).
    /// </summary>
    /// <exception cref="ArgumentException">The adaptation needs initial weights and there are none; the message names the options.</exception>
    public static void RequireWeights(AdaptationMethod adaptation, int? fineTuneLastLayers, string? initialWeightsPath)
    {
        if (initialWeightsPath is null && (adaptation != AdaptationMethod.FineTune || fineTuneLastLayers != null))
            throw new ArgumentException($"{(fineTuneLastLayers != null ? "FineTuneLastLayers" : $"Adaptation {adaptation}")} adapts pretrained weights: set InitialWeightsPath.");
    }

    /// <summary>Refuses settings that do not fit <paramref name="trunk"/> (see <see cref="AdaptedClassifier.SettingsError"/>).</summary>
    /// <exception cref="ArgumentException">The message says which setting and why.</exception>
    public static void Check(CrateConfig trunk, AdaptationMethod adaptation, int promptTokens, int? fineTuneLastLayers)
    {
        if (AdaptedClassifier.SettingsError(trunk, adaptation, promptTokens, fineTuneLastLayers) is { } error)
            throw new ArgumentException($"Adaptation: {error}.");
    }
}
