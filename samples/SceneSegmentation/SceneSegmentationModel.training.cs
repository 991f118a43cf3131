using Crate.MLNet;
using Crate.Training.Segmentation;
using Microsoft.ML;

namespace SceneSegmentation;

/// <summary>Trains the model: the pipeline Model Builder would generate, with Crate's segmentation trainer.</summary>
public partial class SceneSegmentationModel
{
    /// <summary>
    /// CRATE with a per-pixel head, from the <c>Image</c> pixels and the <c>Mask</c> class ids. The class names come with the mask column
    /// (LoadFromSegmentationDataset annotates it) and end up in the ONNX file's metadata; the saved model's columns carry ids.
    /// </summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, Settings settings, Action<EpochReport>? onEpoch = null) =>
        ml.Segmentation().Trainers.Crate(new CrateSegmentationTrainer.Options
        {
            ImageColumnName = "Image",
            MaskColumnName = "Mask",
            PredictedMaskColumnName = "PredictedMask",
            Preset = "mini",
            Dim = settings.Dim,
            Depth = settings.Depth,
            PatchSize = 8,
            Epochs = settings.Epochs,
            BatchSize = 64,
            LearningRate = 1e-3,
            OnnxModelPath = settings.OnnxPath,
            MetricsCallback = onEpoch,
        });

    /// <summary>Fits the pipeline on <paramref name="trainData"/>.</summary>
    public static ITransformer RetrainModel(MLContext ml, IDataView trainData, Settings settings, Action<EpochReport>? onEpoch = null) =>
        BuildPipeline(ml, settings, onEpoch).Fit(trainData);

    /// <summary>Saves the model (the ONNX network inside) to <see cref="MLNetModelPath"/>.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema inputSchema) => ml.Model.Save(model, inputSchema, MLNetModelPath);
}
