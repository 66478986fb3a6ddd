const ws = new WebSocket('ws://localhost:8000/ws');

ws.onopen = () => {
  console.log('WebSocket connected');
  // Send periodic ping to keep connection alive
  setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send('ping');
    }
  }, 30000); // Ping every 30 seconds
};

ws.onmessage = (event) => {
  const message = JSON.parse(event.data);

  switch (message.type) {
    case 'training_start':
      console.log(`Training started: ${message.total_folds} folds, ${message.total_epochs} epochs`);
      break;

    case 'epoch_metrics':
      console.log(`Epoch ${message.epoch}: AUC=${message.val_auc}, DirAcc=${message.DirAcc}`);
      // Update UI with metrics
      break;

    case 'training_complete':
      console.log('Training complete');
      // Download summary report
      break;

    case 'training_error':
      console.error(`Training error: ${message.error}`);
      break;
  }
};

ws.onerror = (error) => {
  console.error('WebSocket error:', error);
};

ws.onclose = () => {
  console.log('WebSocket disconnected');
  // Implement reconnection logic
};
